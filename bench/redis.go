package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	scsredis "github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/gomodule/redigo/redis"
	"github.com/redis/rueidis"

	"github.com/sessionwheel/sessionwheel/redisstore"
	"github.com/sessionwheel/sessionwheel/sessions"
)

// The Redis group: sessionwheel's redisstore, through sessions.Manager,
// against scs v2 with its redisstore (redigo), on one redis-server that the
// harness starts, in the same run.
//
// Per request, each does what its HTTP middleware does, without HTTP:
// sessionwheel's httpadapter calls Manager.Lookup (an HMGET of the
// session's hash; a touch script at most once per Slack, 1 s here), and
// reads values only when the handler asks; scs's LoadAndSave calls
// SessionManager.Load (GET, gob decode of every value) and, because
// IdleTimeout is set, Commit (gob encode, MULTI SET PEXPIREAT EXEC) on
// every request.

// Scenario names of the Redis group; the engines are "sessionwheel" and
// "scs".
const (
	scRedisLookupPar   = "redis-lookup-touch-64"
	scRedisLookup1     = "redis-lookup-touch-1"
	scRedisCreate      = "redis-create"
	scRedisCreateValue = "redis-create-value"
	scRedisMemory      = "redis-memory"
	scRedisMemory128   = "redis-memory-listpack128"
	scRedisEndings     = "redis-endings"

	mOpsS        = "ops/s"
	mWritesTouch = "writes/touch"
	mEndingsS    = "endings/s"
	mErrors      = "errors"
	mWritesSessS = "writes/session/s"  // at most 1/Slack for sessionwheel, whatever the rate
	mP50UsRead   = "p50-us-no-write"   // lookups that wrote no deadline
	mP50UsWrite  = "p50-us-with-write" // lookups that ran the touch script

	engineSCS = "scs"
	// engineSWCache is sessionwheel with Options.ClientCache (1 s): an
	// extra column of the lookup scenarios, with no goal of its own.
	engineSWCache = "sessionwheel-clientcache"
)

// redisCallers is how many goroutines call at once in the throughput
// scenarios: a server's request handlers.
const redisCallers = 64

// redisSlack is redisstore's Slack in every scenario but the endings: a
// busy session costs at most one Redis write per second.
const redisSlack = time.Second

// redisTimeout is redisstore's Timeout in the harness. The default
// (250 ms) fails an operation fast in production; on a shared 2-core
// machine a call now and then waits longer than that for the CPU, and a
// failed create would end the group. It changes no work done (redigo,
// under scs, has no timeout at all).
const redisTimeout = 5 * time.Second

// redisValue is the one value each session holds: 100 bytes.
var redisValue = strings.Repeat("v", 100)

// redisParams configure the Redis group.
type redisParams struct {
	server   string        // redis-server to start
	hot      int           // sessions the lookup scenarios spread over
	sessions int           // sessions created per run of create and memory
	endings  int           // sessions due at once in the endings scenario
	duration time.Duration // length of each measured throughput run
	latOps   int           // lookups per run of the one-caller scenario
}

// redisGoal is one of issue #10's targets: sessionwheel's number against
// scs's (or, for an absolute one, against target itself).
type redisGoal struct {
	what             string
	scenario, metric string
	target           float64
	higherIsBetter   bool
	absolute         bool
}

var redisGoals = []redisGoal{
	{what: "lookup+touch, 64 callers", scenario: scRedisLookupPar, metric: mOpsS, target: 3, higherIsBetter: true},
	{what: "lookup+touch p50, 1 caller", scenario: scRedisLookup1, metric: mP50Us, target: 0.6},
	{what: "create", scenario: scRedisCreate, metric: mOpsS, target: 1.3, higherIsBetter: true},
	{what: "Redis bytes/session, one 100-byte value (hash-max-listpack-value 128)", scenario: scRedisMemory128, metric: mBytes, target: 1.05},
	{what: "Redis writes per touch, Slack 1 s", scenario: scRedisLookupPar, metric: mWritesTouch, target: 0.2, absolute: true},
	{what: "claimed endings/s, 1 process, no-op callbacks", scenario: scRedisEndings, metric: mEndingsS, target: 50_000, higherIsBetter: true, absolute: true},
}

// redisRows is the report's order of the group's rows.
var redisRows = [][2]string{
	{scRedisLookupPar, mOpsS}, {scRedisLookupPar, mWritesTouch}, {scRedisLookupPar, mWritesSessS}, {scRedisLookupPar, mErrors},
	{scRedisLookup1, mP50Us}, {scRedisLookup1, mP99Us}, {scRedisLookup1, mWritesTouch},
	{scRedisLookup1, mP50UsRead}, {scRedisLookup1, mP50UsWrite},
	{scRedisCreate, mOpsS}, {scRedisCreateValue, mOpsS},
	{scRedisMemory, mBytes}, {scRedisMemory128, mBytes},
	{scRedisEndings, mEndingsS}, {scRedisEndings, mDrainMs},
}

// isRedisScenario tells the group's results from the engine scenarios'.
func isRedisScenario(sc string) bool { return strings.HasPrefix(sc, "redis-") }

// redisSteps is the number of progress steps of the group.
const redisSteps = 6

// redisBench is the group's shared state: one server, one client per
// library.
type redisBench struct {
	*bench
	rp   redisParams
	srv  *redisServer
	c    rueidis.Client // sessionwheel's client, and the harness's for INFO
	cc   rueidis.Client // sessionwheel's with client-side caching, for ClientCache
	pool *redis.Pool    // scs's
	// sm is scs's manager, one for the group: scs.New starts a memstore
	// with a clean-up goroutine for the life of the process (see
	// setupSCS), even when Store is replaced at once.
	sm *scs.SessionManager
}

// redisGroup runs the group. Without redis-server it notes why and returns
// nil: the rest of the report stands.
func (b *bench) redisGroup() error {
	rp := b.p.redis
	path, err := exec.LookPath(rp.server)
	if err != nil {
		msg := fmt.Sprintf("the Redis group was skipped: %s not found (%v); install redis-server to run it", rp.server, err)
		fmt.Fprintln(b.stderr, "bench: "+msg)
		b.note("%s", msg)
		b.redisSkipped = true
		for range redisSteps {
			_ = b.bar.Add(1)
		}
		return nil
	}
	dir, err := os.MkdirTemp("", "bench-redis-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := startRedis(path, dir)
	if err != nil {
		return err
	}
	defer srv.kill()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.addr}, DisableCache: true})
	if err != nil {
		return err
	}
	defer c.Close()
	// rueidis's default: RESP3 with client-side caching (CLIENT TRACKING).
	cc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.addr}})
	if err != nil {
		return err
	}
	defer cc.Close()
	pool := &redis.Pool{
		// One connection per caller, kept: redigo takes a connection from
		// the pool per command (scs's Find and Commit each take one).
		MaxIdle:     2 * redisCallers,
		IdleTimeout: time.Minute,
		Dial:        func() (redis.Conn, error) { return redis.Dial("tcp", srv.addr) },
	}
	defer pool.Close()
	sm := scs.New()
	sm.Store = scsredis.New(pool)
	sm.IdleTimeout = 30 * time.Minute
	r := &redisBench{bench: b, rp: rp, srv: srv, c: c, cc: cc, pool: pool, sm: sm}
	version, _ := r.info("server", "redis_version")
	lp, _ := r.configGet("hash-max-listpack-value")
	b.res.redis = redisSummary{ran: true, version: version, defaultListpack: lp, hot: rp.hot, sessions: rp.sessions, endings: rp.endings, duration: rp.duration.String(), latOps: rp.latOps}

	// Memory first, at the server's default and at 128; the speed
	// scenarios then run at 128, the setting redisstore's documentation
	// asks for (New warns below it).
	if err := r.memory(); err != nil {
		return fmt.Errorf("redis memory: %w", err)
	}
	for _, f := range []func() error{r.lookupParallel, r.lookupOne, r.create, r.endings} {
		if err := f(); err != nil {
			return fmt.Errorf("redis: %w", err)
		}
	}
	return nil
}

// bg is the context of the harness's calls: every operation has a timeout
// of its own (redisstore's Timeout, redigo's none: the server is local).
var bg = context.Background()

// do runs one command on the harness's client.
func (r *redisBench) do(cmd rueidis.Completed) rueidis.RedisResult {
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	return r.c.Do(ctx, cmd)
}

// flush empties the server between scenarios.
func (r *redisBench) flush() error {
	return r.do(r.c.B().Flushall().Sync().Build()).Error()
}

func (r *redisBench) setListpack(v string) error {
	return r.do(r.c.B().ConfigSet().ParameterValue().ParameterValue("hash-max-listpack-value", v).Build()).Error()
}

func (r *redisBench) configGet(param string) (string, error) {
	m, err := r.do(r.c.B().ConfigGet().Parameter(param).Build()).AsStrMap()
	return m[param], err
}

// info returns one field of an INFO section.
func (r *redisBench) info(section, field string) (string, error) {
	s, err := r.do(r.c.B().Info().Section(section).Build()).ToString()
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("INFO %s has no %s", section, field)
}

func (r *redisBench) usedMemory() (int64, error) {
	v, err := r.info("memory", "used_memory")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

// calls returns how many times the server ran cmd (INFO commandstats).
func (r *redisBench) calls(cmd string) (int64, error) {
	v, err := r.info("commandstats", "cmdstat_"+cmd)
	if err != nil {
		return 0, nil // never called yet
	}
	for _, kv := range strings.Split(v, ",") {
		if n, ok := strings.CutPrefix(kv, "calls="); ok {
			return strconv.ParseInt(n, 10, 64)
		}
	}
	return 0, fmt.Errorf("commandstats of %s: %q", cmd, v)
}

// A redisSide is one library set up on the server: how it creates a
// session and serves a request.
type redisSide struct {
	name string
	// create makes a session, with one 100-byte value if withValue, and
	// returns what a cookie would carry.
	create func(withValue bool) (string, error)
	// request does what the library's middleware does for a request
	// carrying the cookie: lookup and touch.
	request func(token string) error
	// writes counts the writes that touches made so far.
	writes func() (int64, error)
	// touchWrites is writes without a round trip to the server, where the
	// library counts them itself (sessionwheel), or nil.
	touchWrites func() uint64
	close       func()
}

// swSide is sessionwheel on the server: a Manager on a fresh redisstore.
func (r *redisBench) swSide(opt redisstore.Options, cfg sessions.Config) (*redisSide, *redisstore.Store, *sessions.Manager, error) {
	c, name := r.c, us
	if opt.ClientCache > 0 {
		c, name = r.cc, engineSWCache
	}
	opt.Logger = slog.New(slog.DiscardHandler) // the report states the listpack setting
	opt.Timeout = redisTimeout
	st, err := redisstore.New(c, opt)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg.Store = st
	m, err := sessions.New(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	side := &redisSide{
		name: name,
		create: func(withValue bool) (string, error) {
			s, err := m.Create()
			if err != nil {
				return "", err
			}
			if withValue {
				if err := s.Set("v", redisValue); err != nil {
					return "", err
				}
			}
			return s.ID().String(), nil
		},
		request: func(token string) error {
			_, err := m.LookupString(token)
			return err
		},
		writes:      func() (int64, error) { return int64(st.Stats().TouchWrites), nil },
		touchWrites: func() uint64 { return st.Stats().TouchWrites },
		close: func() {
			ctx, cancel := context.WithTimeout(bg, 10*time.Second)
			defer cancel()
			_ = m.Close(ctx)
		},
	}
	return side, st, m, nil
}

// scsSide is scs v2 with its redisstore on the server, as LoadAndSave uses
// it with IdleTimeout set.
func (r *redisBench) scsSide() *redisSide {
	sm := r.sm
	errMiss := errors.New("scs: no session under the token")
	return &redisSide{
		name: engineSCS,
		create: func(withValue bool) (string, error) {
			ctx, err := sm.Load(bg, "")
			if err != nil {
				return "", err
			}
			if withValue {
				sm.Put(ctx, "v", redisValue)
			}
			token, _, err := sm.Commit(ctx)
			return token, err
		},
		request: func(token string) error {
			ctx, err := sm.Load(bg, token)
			if err != nil {
				return err
			}
			if sm.Token(ctx) == "" {
				return errMiss
			}
			_, _, err = sm.Commit(ctx)
			return err
		},
		writes: func() (int64, error) { return r.calls("set") },
		close:  func() {},
	}
}

// steadyConfig is the Manager's configuration for the speed and memory
// scenarios: nothing expires while they run.
var steadyConfig = sessions.Config{IdleTimeout: 30 * time.Minute}

// createMany creates n sessions with redisCallers goroutines and returns
// their tokens and the creations per second.
func createMany(side *redisSide, n int, withValue bool) ([]string, float64, error) {
	tokens := make([]string, n)
	var next atomic.Int64
	errs := make([]error, redisCallers)
	var wg sync.WaitGroup
	t0 := time.Now()
	for g := range redisCallers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				tok, err := side.create(withValue)
				if err != nil {
					errs[g] = err
					return
				}
				tokens[i] = tok
			}
		})
	}
	wg.Wait()
	el := time.Since(t0)
	if err := errors.Join(errs...); err != nil {
		return nil, 0, fmt.Errorf("%s create: %w", side.name, err)
	}
	return tokens, float64(n) / el.Seconds(), nil
}

// makers returns how to set up each library afresh, sessionwheel first.
func (r *redisBench) makers() []func() (*redisSide, error) {
	return []func() (*redisSide, error){
		func() (*redisSide, error) {
			s, _, _, err := r.swSide(redisstore.Options{Slack: redisSlack}, steadyConfig)
			return s, err
		},
		func() (*redisSide, error) { return r.scsSide(), nil },
	}
}

// lookupMakers are makers and sessionwheel with ClientCache (1 s),
// for the lookup scenarios.
func (r *redisBench) lookupMakers() []func() (*redisSide, error) {
	return append(r.makers(), func() (*redisSide, error) {
		s, _, _, err := r.swSide(redisstore.Options{Slack: redisSlack, ClientCache: redisSlack}, steadyConfig)
		return s, err
	})
}

// memory measures the server's memory per session holding one 100-byte
// value: used_memory after creating the sessions minus before, over their
// number, at the server's default hash-max-listpack-value and at 128.
func (r *redisBench) memory() error {
	n := r.rp.sessions
	def := r.res.redis.defaultListpack
	for _, v := range []struct{ scenario, listpack string }{{scRedisMemory, def}, {scRedisMemory128, "128"}} {
		r.step("redis", n, "memory, hash-max-listpack-value "+v.listpack)
		for _, mk := range r.makers() {
			var per []float64
			name := ""
			// Memory varies little from run to run: half the runs.
			for range max(1, r.p.runs/2) {
				if err := r.flush(); err != nil {
					return err
				}
				if err := r.setListpack(v.listpack); err != nil {
					return err
				}
				side, err := mk()
				if err != nil {
					return err
				}
				name = side.name
				m0, err := r.usedMemory()
				if err != nil {
					return err
				}
				_, _, err = createMany(side, n, true)
				side.close()
				if err != nil {
					return err
				}
				m1, err := r.usedMemory()
				if err != nil {
					return err
				}
				per = append(per, float64(m1-m0)/float64(n))
			}
			r.add(v.scenario, name, n, mBytes, median(per))
		}
	}
	if err := r.flush(); err != nil {
		return err
	}
	return r.setListpack("128")
}

// lookupParallel: redisCallers goroutines look up and touch random
// sessions of rp.hot, each with one 100-byte value, for rp.duration per
// run; throughput, and the writes the touches made per lookup.
func (r *redisBench) lookupParallel() error {
	return r.eachLookupSide("lookup+touch, 64 callers", r.lookupParallelSide)
}

// eachLookupSide runs measure on every side of the lookup scenarios, each
// on a flushed server, over rp.hot sessions.
func (r *redisBench) eachLookupSide(what string, measure func(side *redisSide, n int) error) error {
	n := r.rp.hot
	r.step("redis", n, what)
	for _, mk := range r.lookupMakers() {
		if err := r.flush(); err != nil {
			return err
		}
		side, err := mk()
		if err != nil {
			return err
		}
		err = measure(side, n)
		side.close()
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *redisBench) lookupParallelSide(side *redisSide, n int) error {
	tokens, _, err := createMany(side, n, true)
	if err != nil {
		return err
	}
	var rates, writes, perSession []float64
	var failed int64
	var firstErr error
	// A warm-up (connections, the first touch of every session), then
	// the measured runs.
	for run := -1; run < r.p.runs; run++ {
		d := r.rp.duration
		if run < 0 {
			d = max(d/2, 200*time.Millisecond)
		}
		w0, err := side.writes()
		if err != nil {
			return err
		}
		var ops, errs atomic.Int64
		var stop atomic.Bool
		var mu sync.Mutex
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for g := range redisCallers {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(r.p.seed+uint64(run+2), uint64(g)))
				var mine, bad int64
				<-gate
				for !stop.Load() {
					if err := side.request(tokens[rng.IntN(len(tokens))]); err != nil {
						bad++
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
					}
					mine++
				}
				ops.Add(mine)
				errs.Add(bad)
			})
		}
		t0 := time.Now()
		close(gate)
		time.Sleep(d)
		stop.Store(true)
		wg.Wait()
		el := time.Since(t0)
		w1, err := side.writes()
		if err != nil {
			return err
		}
		if run < 0 {
			continue
		}
		failed += errs.Load()
		rates = append(rates, float64(ops.Load()-errs.Load())/el.Seconds())
		writes = append(writes, float64(w1-w0)/float64(max(ops.Load(), 1)))
		perSession = append(perSession, float64(w1-w0)/float64(n)/el.Seconds())
	}
	r.add(scRedisLookupPar, side.name, n, mOpsS, median(rates))
	r.add(scRedisLookupPar, side.name, n, mWritesTouch, median(writes))
	r.add(scRedisLookupPar, side.name, n, mWritesSessS, median(perSession))
	r.add(scRedisLookupPar, side.name, n, mErrors, float64(failed))
	if failed > 0 {
		r.note("redis lookup+touch, %s: %d lookups of live sessions failed in the measured runs (first: %v); they are not counted in ops/s", side.name, failed, firstErr)
	}
	return nil
}

// lookupOne: one caller looks up and touches random sessions of rp.hot,
// one after another; the latency of each.
func (r *redisBench) lookupOne() error {
	return r.eachLookupSide("lookup+touch, 1 caller", r.lookupOneSide)
}

func (r *redisBench) lookupOneSide(side *redisSide, n int) error {
	tokens, _, err := createMany(side, n, true)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(r.p.seed, 7))
	lat := make([]float64, r.rp.latOps)
	wrote := make([]bool, r.rp.latOps)
	var p50s, p99s, writes, p50Read, p50Write []float64
	for run := -1; run < r.p.runs; run++ {
		w0, err := side.writes()
		if err != nil {
			return err
		}
		for i := range lat {
			tok := tokens[rng.IntN(len(tokens))]
			var tw uint64
			if side.touchWrites != nil {
				tw = side.touchWrites()
			}
			t0 := time.Now()
			if err := side.request(tok); err != nil {
				return fmt.Errorf("%s lookup: %w", side.name, err)
			}
			lat[i] = float64(time.Since(t0)) / 1e3
			wrote[i] = side.touchWrites != nil && side.touchWrites() != tw
		}
		w1, err := side.writes()
		if err != nil {
			return err
		}
		if run < 0 {
			continue
		}
		s := slices.Clone(lat)
		slices.Sort(s)
		p50s, p99s = append(p50s, quantile(s, 0.5)), append(p99s, quantile(s, 0.99))
		writes = append(writes, float64(w1-w0)/float64(len(lat)))
		if side.touchWrites != nil {
			var rd, wr []float64
			for i, x := range lat {
				if wrote[i] {
					wr = append(wr, x)
				} else {
					rd = append(rd, x)
				}
			}
			slices.Sort(rd)
			slices.Sort(wr)
			if len(rd) > 0 {
				p50Read = append(p50Read, quantile(rd, 0.5))
			}
			if len(wr) > 0 {
				p50Write = append(p50Write, quantile(wr, 0.5))
			}
		}
	}
	r.add(scRedisLookup1, side.name, n, mP50Us, median(p50s))
	r.add(scRedisLookup1, side.name, n, mP99Us, median(p99s))
	r.add(scRedisLookup1, side.name, n, mWritesTouch, median(writes))
	r.addMedian(scRedisLookup1, side.name, n, mP50UsRead, p50Read)
	r.addMedian(scRedisLookup1, side.name, n, mP50UsWrite, p50Write)
	return nil
}

// create: redisCallers goroutines create rp.sessions sessions, empty
// (scs: Load without a token and Commit, which is what LoadAndSave stores
// for a new session once something marks it modified) and with one
// 100-byte value (sessionwheel: Create, then Set; scs: Put, then Commit).
func (r *redisBench) create() error {
	n := r.rp.sessions
	r.step("redis", n, "create")
	for _, v := range []struct {
		scenario  string
		withValue bool
	}{{scRedisCreate, false}, {scRedisCreateValue, true}} {
		for _, mk := range r.makers() {
			var rates []float64
			name := ""
			for run := -1; run < r.p.runs; run++ {
				if err := r.flush(); err != nil {
					return err
				}
				side, err := mk()
				if err != nil {
					return err
				}
				name = side.name
				m := n
				if run < 0 {
					m = max(n/10, 1000) // warm-up
				}
				_, rate, err := createMany(side, m, v.withValue)
				side.close()
				if err != nil {
					return err
				}
				if run >= 0 {
					rates = append(rates, rate)
				}
			}
			r.add(v.scenario, name, n, mOpsS, median(rates))
		}
	}
	return r.flush()
}

// endings: rp.endings sessions, created through a store with no claimer
// and an idle timeout of endingsIdle, are all due when a Manager starts on
// them; its claimer ends them with a no-op OnExpire. Throughput is their
// number over the time from the first callback to the last. scs has no
// endings (Redis drops its keys at their TTL, silently): sessionwheel only.
func (r *redisBench) endings() error {
	n := r.rp.endings
	r.step("redis", n, "claimed endings")
	const endingsIdle = 200 * time.Millisecond
	var rates, drains []float64
	for run := range max(1, r.p.expiryRuns) {
		if err := r.flush(); err != nil {
			return err
		}
		pre, err := redisstore.New(r.c, redisstore.Options{Prefix: "sw", Timeout: redisTimeout, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return err
		}
		if err := pre.Open(sessions.StoreConfig{IdleTimeout: endingsIdle, Tick: r.p.tick}); err != nil {
			return err
		}
		var ids sessions.IDSource
		idList := make([]sessions.ID, n)
		for i := range idList {
			idList[i] = ids.Next()
		}
		var next atomic.Int64
		errs := make([]error, redisCallers)
		var wg sync.WaitGroup
		for g := range redisCallers {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= int64(n) {
						return
					}
					ctx, cancel := context.WithTimeout(bg, 10*time.Second)
					_, err := pre.Create(ctx, idList[i])
					cancel()
					if err != nil {
						errs[g] = err
						return
					}
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("endings create: %w", err)
		}
		// Every session is due an idle timeout after its creation, by
		// Redis's clock; wait that out, with a margin for the clocks.
		time.Sleep(endingsIdle + 100*time.Millisecond)

		var count atomic.Int64
		var first, last atomic.Int64
		done := make(chan struct{})
		t0 := time.Now()
		st, err := redisstore.New(r.c, redisstore.Options{Prefix: "sw", Timeout: redisTimeout, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return err
		}
		m, err := sessions.New(sessions.Config{
			IdleTimeout: endingsIdle,
			Tick:        r.p.tick,
			Store:       st,
			OnExpire: func(sessions.Session, sessions.Reason) {
				at := int64(time.Since(t0))
				first.CompareAndSwap(0, at)
				if count.Add(1) == int64(n) {
					last.Store(at)
					close(done)
				}
			},
		})
		if err != nil {
			return err
		}
		timeout := time.Duration(n)*100*time.Microsecond + 30*time.Second
		var waitErr error
		select {
		case <-done:
		case <-time.After(timeout):
			waitErr = fmt.Errorf("endings: %d of %d callbacks within %v", count.Load(), n, timeout)
		}
		ctx, cancel := context.WithTimeout(bg, 10*time.Second)
		_ = m.Close(ctx)
		cancel()
		if waitErr != nil {
			return waitErr
		}
		if c := count.Load(); c != int64(n) {
			r.note("redis endings, run %d: %d callbacks for %d sessions", run+1, c, n)
		}
		drain := time.Duration(last.Load() - first.Load())
		drains = append(drains, ms(drain))
		rates = append(rates, float64(n)/drain.Seconds())
	}
	r.add(scRedisEndings, us, n, mEndingsS, median(rates))
	r.add(scRedisEndings, us, n, mDrainMs, median(drains))
	return r.flush()
}
