package redisstore

// The application process of the fault scenarios (faults_test.go): the test
// binary re-executed with -test.run=^TestFaultChild$ and its configuration
// in the environment. It runs a sessions.Manager on its own rueidis client
// and Store, and reports on stdout, one "@"-prefixed line per event, what a
// scenario checks: each claim, each callback (with Redis's TIME at the
// callback and the deadline the store held), each acknowledgement's
// outcome, each explicit Expire's, each touch that missed and each lookup
// of a probe session. It takes commands on stdin (see childCommands). The
// parent kills, stops and resumes it with signals: nothing it reports is
// trusted beyond what it wrote before that.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/sessionwheel/sessionwheel/sessions"
)

// envFaultChild holds a child's configuration (JSON of childConfig); a test
// binary started without it is not a child.
const envFaultChild = "SESSIONWHEEL_FAULT_CHILD"

// childConfig is what the parent tells a child process.
type childConfig struct {
	Name  string
	Addrs []string
	// The manager's settings.
	Idle, Tick        time.Duration
	Workers, QueueLen int
	// The store's.
	Lease, Timeout time.Duration
	// CallbackDelay slows each callback (after it has reported itself), so
	// that a signal lands while a batch's callbacks run.
	CallbackDelay time.Duration
}

// TestFaultChild is the child role of the fault scenarios. Run by go test
// directly it skips: it runs only when a scenario re-executes the test
// binary with envFaultChild set, and then never returns (it exits when told
// to quit, when its stdin closes, or is killed).
func TestFaultChild(t *testing.T) {
	raw := os.Getenv(envFaultChild)
	if raw == "" {
		t.Skip("the application process of the TestFault scenarios: runs only when they start it")
	}
	var cfg childConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child config:", err)
		os.Exit(2)
	}
	os.Exit(runChild(cfg))
}

// events writes the child's report lines; a line is one write to the pipe
// (below PIPE_BUF), so lines of concurrent goroutines never interleave and
// a kill never leaves half a line.
type events struct{ mu sync.Mutex }

func (e *events) emit(format string, args ...any) {
	line := "@" + fmt.Sprintf(format, args...) + "\n"
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = os.Stdout.WriteString(line)
}

// errKind names an error as the parent reads it.
func errKind(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, sessions.ErrNotFound), errors.Is(err, sessions.ErrEnded):
		return "notfound"
	case errors.Is(err, sessions.ErrUnavailable):
		return "unavail"
	}
	return "other"
}

// reportingStore is the child's Store: redisstore's, reporting the claims,
// explicit expiries and acknowledgements the manager makes through it.
type reportingStore struct {
	*Store
	ev *events
	// ackMu serialises acknowledgements, so that the change of LeasesLost
	// across one Ack is that Ack's: the store counts refusals, it does not
	// name them.
	ackMu sync.Mutex
}

// Claim reports each ending claimed: "claim ID LEASE REDELIVERED".
func (r *reportingStore) Claim(ctx context.Context, max int) ([]sessions.Ending, time.Time, error) {
	due, next, err := r.Store.Claim(ctx, max)
	for _, e := range due {
		re := 0
		if e.Redelivered {
			re = 1
		}
		r.ev.emit("claim %s %d %d", e.ID, e.Lease, re)
	}
	return due, next, err
}

// Expire reports "exp ID RESULT REASON", and the claim it makes when it
// wins.
func (r *reportingStore) Expire(ctx context.Context, id sessions.ID) (sessions.Ending, error) {
	e, err := r.Store.Expire(ctx, id)
	r.ev.emit("exp %s %s %d", id, errKind(err), e.Reason)
	if err == nil {
		r.ev.emit("claim %s %d 0", e.ID, e.Lease)
	}
	return e, err
}

// Ack reports "ack ID OUTCOME" for each ending: ok (deleted under our
// lease), refused (the lease had run out: the ending was or will be run
// elsewhere), failed (Redis did not answer: unknown), or unknown (a batch
// of which only some were refused).
func (r *reportingStore) Ack(ctx context.Context, done []sessions.Ending) error {
	r.ackMu.Lock()
	defer r.ackMu.Unlock()
	before := r.Store.st.leasesLost.Load()
	err := r.Store.Ack(ctx, done)
	lost := int(r.Store.st.leasesLost.Load() - before)
	outcome := "unknown"
	switch {
	case err != nil:
		outcome = "failed"
	case lost == 0:
		outcome = "ok"
	case lost == len(done):
		outcome = "refused"
	}
	for _, e := range done {
		r.ev.emit("ack %s %s", e.ID, outcome)
	}
	return err
}

// callbackClock reads Redis's TIME and the deadline a session's hash holds,
// in one script on the session's slot: {now ms, d or ""}.
var callbackClock = rueidis.NewLuaScript(`local t=redis.call('TIME')
return {t[1]*1000+math.floor(t[2]/1000), redis.call('HGET',KEYS[1],'d') or ''}`)

func runChild(cfg childConfig) int {
	ev := &events{}
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: cfg.Addrs, DisableCache: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return 2
	}
	inner, err := New(c, Options{Lease: cfg.Lease, Timeout: cfg.Timeout, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "store:", err)
		return 2
	}
	st := &reportingStore{Store: inner, ev: ev}
	onExpire := func(s sessions.Session, why sessions.Reason) {
		id := s.ID()
		now, d, src := childCallbackTime(c, inner, id)
		ev.emit("cb %s %d %d %d %s", id, why, now, d, src)
		if cfg.CallbackDelay > 0 {
			time.Sleep(cfg.CallbackDelay)
		}
	}
	m, err := sessions.New(sessions.Config{
		IdleTimeout: cfg.Idle, Tick: cfg.Tick, Workers: cfg.Workers, QueueLen: cfg.QueueLen,
		OnExpire: onExpire, Store: st,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		return 2
	}
	ev.emit("ready %s %d", cfg.Name, os.Getpid())
	childCommands(c, inner, m, ev)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = m.Close(ctx)
	ev.emit("closed %s", errKind(err))
	c.Close()
	return 0
}

// childCallbackTime returns Redis's TIME at a callback and the session's
// deadline (-1 once its hash is gone: acknowledged elsewhere). While Redis
// does not answer it retries for a second, then falls back to this
// machine's clock, which is the clock of the test's Redis (same host), and
// says so ("local" instead of "redis").
func childCallbackTime(c rueidis.Client, st *Store, id sessions.ID) (now, d int64, src string) {
	key := st.hashKey(st.bucket(id), id.String())
	give := time.Now().Add(time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		v, err := callbackClock.Exec(ctx, c, []string{key}, nil).ToArray()
		cancel()
		if err == nil && len(v) == 2 {
			now, _ = v[0].AsInt64()
			ds, _ := v[1].ToString()
			d = -1
			if ds != "" {
				d, _ = strconv.ParseInt(ds, 10, 64)
			}
			return now, d, "redis"
		}
		if time.Now().After(give) {
			return time.Now().UnixMilli(), -1, "local"
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// redisTimeMs reads Redis's TIME (any node of a cluster: they share this
// machine's clock), retrying for up to two seconds; 0 if it cannot.
func redisTimeMs(c rueidis.Client) int64 {
	give := time.Now().Add(2 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		v, err := c.Do(ctx, c.B().Time().Build()).ToArray()
		cancel()
		if err == nil && len(v) == 2 {
			s, _ := v[0].ToString()
			u, _ := v[1].ToString()
			sec, err1 := strconv.ParseInt(s, 10, 64)
			usec, err2 := strconv.ParseInt(u, 10, 64)
			if err1 == nil && err2 == nil {
				return sec*1000 + usec/1000
			}
		}
		if time.Now().After(give) {
			return 0
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// childCommands runs the parent's commands until "quit" or the end of
// stdin:
//
//	touch FILE SEQ          look up (touching) each ID of FILE once, 8 at a
//	                        time; report "miss SEQ ID KIND" for each that
//	                        failed and "pass SEQ T0 T1 OK MISSES" with
//	                        Redis's TIME before and after the pass
//	expire FILE AT          at AT (Unix ms, this machine's clock), expire
//	                        each ID of FILE, 4 at a time in file order (the
//	                        store reports each), then "expired"
//	probe ID MS             look ID up every MS ms, reporting "probe KIND"
//	unprobe                 stop probing
//	quit
func childCommands(c rueidis.Client, st *Store, m *sessions.Manager, ev *events) {
	var probeStop chan struct{}
	var probes sync.WaitGroup
	defer func() {
		if probeStop != nil {
			close(probeStop)
		}
		probes.Wait()
	}()
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "touch":
			ids := readIDs(f[1])
			t0 := redisTimeMs(c)
			var ok, missed atomic.Int64
			parallel(ids, 8, func(id sessions.ID) {
				if _, err := m.Lookup(id); err != nil {
					missed.Add(1)
					ev.emit("miss %s %s %s", f[2], id, errKind(err))
					return
				}
				ok.Add(1)
			})
			ev.emit("pass %s %d %d %d %d", f[2], t0, redisTimeMs(c), ok.Load(), missed.Load())
		case "expire":
			ids := readIDs(f[1])
			at, _ := strconv.ParseInt(f[2], 10, 64)
			time.Sleep(time.Until(time.UnixMilli(at)))
			parallel(ids, 4, func(id sessions.ID) { m.Expire(id) })
			ev.emit("expired")
		case "probe":
			id, err := sessions.ParseID(f[1])
			every, _ := strconv.Atoi(f[2])
			if err != nil || probeStop != nil {
				ev.emit("error bad probe %q", sc.Text())
				continue
			}
			probeStop = make(chan struct{})
			probes.Add(1)
			go func(stop <-chan struct{}) {
				defer probes.Done()
				tk := time.NewTicker(time.Duration(every) * time.Millisecond)
				defer tk.Stop()
				for {
					_, err := m.Lookup(id)
					ev.emit("probe %s", errKind(err))
					select {
					case <-stop:
						return
					case <-tk.C:
					}
				}
			}(probeStop)
		case "unprobe":
			if probeStop != nil {
				close(probeStop)
				probes.Wait()
				probeStop = nil
			}
			ev.emit("unprobed")
		case "quit":
			return
		default:
			ev.emit("error unknown command %q", sc.Text())
		}
	}
}

// readIDs reads a file of session IDs, one a line.
func readIDs(path string) []sessions.ID {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ids:", err)
		return nil
	}
	var ids []sessions.ID
	for _, line := range strings.Fields(string(data)) {
		if id, err := sessions.ParseID(line); err == nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// parallel calls f for each ID, n at a time, taking them in order.
func parallel(ids []sessions.ID, n int, f func(sessions.ID)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(ids)) {
					return
				}
				f(ids[i])
			}
		}()
	}
	wg.Wait()
}
