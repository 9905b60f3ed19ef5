package redisstore

import (
	"bytes"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/sessionwheel/sessionwheel/redisstore/redistest"
	"github.com/sessionwheel/sessionwheel/sessions"
)

var cfg300 = sessions.StoreConfig{IdleTimeout: 300 * time.Millisecond, Tick: 10 * time.Millisecond}

// New warns when the server's hash-max-listpack-value makes sessions with
// values dear, and not otherwise.
func TestListpackWarning(t *testing.T) {
	for _, tc := range []struct {
		setting string
		warn    bool
	}{{"64", true}, {"128", false}} {
		r := redistest.Server(t, "--hash-max-listpack-value", tc.setting)
		var buf bytes.Buffer
		if _, err := New(client(t, r.Addr), Options{Logger: slog.New(slog.NewTextHandler(&buf, nil))}); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(buf.String(), "hash-max-listpack-value"); got != tc.warn {
			t.Errorf("hash-max-listpack-value %s: warned %v, want %v (%q)", tc.setting, got, tc.warn, buf.String())
		}
	}
}

func TestOptionsInvalid(t *testing.T) {
	for _, o := range []Options{
		{Prefix: "a{b"}, {Buckets: 3}, {Buckets: 512}, {Buckets: -1}, {Slack: -1},
		{Lease: -time.Second}, {Lease: time.Microsecond}, {Batch: -1}, {Timeout: -1}, {Grace: -1}, {Poll: -1}, {ClientCache: -1},
	} {
		if _, err := New(nil, o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("New(nil, %+v) = %v, want ErrInvalidOptions", o, err)
		}
	}
	if _, err := (Options{}).withDefaults(); err != nil {
		t.Errorf("zero Options: %v", err)
	}
}

// Create has NX semantics: an ID in use, live or ending, is refused, and
// the record's times are Redis's.
func TestCreateNX(t *testing.T) {
	r := redistest.Server(t)
	st := open(t, client(t, r.Addr), Options{}, cfg300)
	id := newID(t)
	before := redisTime(t, r)
	rec, err := st.Create(bg, id)
	after := redisTime(t, r)
	if err != nil {
		t.Fatal(err)
	}
	if c := rec.Created.UnixMilli(); c < before || c > after {
		t.Errorf("Created %d not within Redis TIME [%d, %d]", c, before, after)
	}
	if got, want := rec.Deadline.Sub(rec.Created), 300*time.Millisecond; got != want {
		t.Errorf("deadline - created = %v, want %v", got, want)
	}
	if _, err := st.Create(bg, id); !errors.Is(err, sessions.ErrIDInUse) {
		t.Errorf("second Create = %v, want ErrIDInUse", err)
	}
	// Ending but not acknowledged: still in use.
	if _, err := st.Expire(bg, id); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(bg, id); !errors.Is(err, sessions.ErrIDInUse) {
		t.Errorf("Create over an ending session = %v, want ErrIDInUse", err)
	}
	got, err := st.Lookup(bg, id, false)
	if !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("Lookup of an ending session = %v, %v; want ErrNotFound", got, err)
	}
	// Due but its hash gone (garbage-collected, not yet claimed): in use,
	// and its due entry untouched.
	id2 := newID(t)
	if _, err := st.Create(bg, id2); err != nil {
		t.Fatal(err)
	}
	b := st.bucket(id2)
	r.MustDo("DEL", st.hashKey(b, id2.String()))
	score := r.MustDo("ZSCORE", st.keys[b].due, id2.String())
	if _, err := st.Create(bg, id2); !errors.Is(err, sessions.ErrIDInUse) {
		t.Errorf("Create over a due entry without a hash = %v, want ErrIDInUse", err)
	}
	if s := r.MustDo("ZSCORE", st.keys[b].due, id2.String()); s != score {
		t.Errorf("refused Create moved the due entry from %s to %s", score, s)
	}
	if n := r.MustDo("EXISTS", st.hashKey(b, id2.String())); n != "0" {
		t.Errorf("refused Create wrote the hash")
	}
}

// The clock is Redis's: deadlines are Redis TIME plus the idle timeout, and
// a store whose estimate of Redis's clock is wildly wrong still writes
// Redis-dated deadlines and never claims a live session.
func TestClockFromRedis(t *testing.T) {
	r := redistest.Server(t)
	st := open(t, client(t, r.Addr), Options{Slack: 50 * time.Millisecond}, sessions.StoreConfig{IdleTimeout: time.Second, Tick: 10 * time.Millisecond})
	id := newID(t)
	rec, err := st.Create(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	// Poison every bucket's clock: the store now believes Redis is an hour
	// ahead (lower and upper bounds alike).
	hour := int64(time.Hour / time.Microsecond)
	for b := range st.clocks {
		c := &st.clocks[b]
		c.mu.Lock()
		c.lo.Store(c.lo.Load() + hour)
		c.hi.Store(c.hi.Load() + hour)
		// An old sample, as if the clock had stepped since: the next
		// script reply replaces it.
		c.at.Store(st.mono() - 2*int64(time.Second/time.Microsecond))
		c.width = 0
		c.mu.Unlock()
	}
	// Believing it overdue, a lookup calls it ended (the estimate errs only
	// if poisoned), but the touch and the claim go by Redis's TIME.
	if _, err := st.Lookup(bg, id, false); !errors.Is(err, sessions.ErrNotFound) {
		t.Logf("lookup with a poisoned clock: %v", err)
	}
	due, _, err := st.Claim(bg, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 0 {
		t.Fatalf("claimed %v: a live session, by a store whose clock is an hour ahead", due)
	}
	before := redisTime(t, r)
	v, err := st.run(bg, opTouch, st.bucket(id), touchScript,
		[]string{st.keys[st.bucket(id)].due, st.hashKey(st.bucket(id), id.String())}, []string{id.String(), "50", st.graceMs})
	after := redisTime(t, r)
	if err != nil {
		t.Fatal(err)
	}
	_, d, _ := two(v)
	if d < before+1000+50 || d > after+1000+50 {
		t.Errorf("touched deadline %d not Redis TIME + idle + slack in [%d, %d]", d, before+1050, after+1050)
	}
	if d <= rec.Deadline.UnixMilli() {
		t.Errorf("touch did not move the deadline: %d <= %d", d, rec.Deadline.UnixMilli())
	}
	// The touch's reply replaced the poisoned sample in its bucket.
	if _, err := st.Lookup(bg, id, false); err != nil {
		t.Errorf("lookup after the clock was learnt again: %v", err)
	}
}

// A busy session costs at most one write per slack, and its deadline
// always covers the idle timeout from every touch: never early. Touched
// by one process (its hints steer each lookup to HMGET or to the combined
// script), by the combined script alone, by two processes in turn
// (each one's hints go stale with the other's writes), and by two of which
// one reads through ClientCache (its cache lags the other's writes).
func TestTouchSlackCoalescing(t *testing.T) {
	for _, mode := range []string{"one", "script", "two", "cache"} {
		t.Run(mode, func(t *testing.T) {
			r := redistest.Server(t)
			const slack = 100 * time.Millisecond
			o, cfg := Options{Slack: slack}, sessions.StoreConfig{IdleTimeout: time.Second, Tick: time.Millisecond}
			st := open(t, client(t, r.Addr), o, cfg)
			other := st
			switch mode {
			case "two":
				other = open(t, client(t, r.Addr), o, cfg)
			case "cache":
				cc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{r.Addr}})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(cc.Close)
				oc := o
				oc.ClientCache = time.Minute
				other = open(t, cc, oc, cfg)
			}
			id := newID(t)
			if _, err := st.Create(bg, id); err != nil {
				t.Fatal(err)
			}
			b := st.bucket(id)
			start := redisTime(t, r)
			touches := 0
			for redisTime(t, r) < start+1000 {
				before := redisTime(t, r)
				var rec sessions.Record
				var err error
				switch {
				case mode == "script":
					rec, err = st.lookupTouch(bg, id, b, id.String(), st.hashKey(b, id.String()))
				case touches%2 == 1:
					rec, err = other.Lookup(bg, id, true)
				default:
					rec, err = st.Lookup(bg, id, true)
				}
				if err != nil {
					t.Fatal(err)
				}
				touches++
				if d := rec.Deadline.UnixMilli(); d < before+1000 {
					t.Fatalf("touch at Redis time >= %d left deadline %d: earlier than the idle timeout", before, d)
				}
				// The hash holds at least the returned deadline (a cached
				// read may return an older one, never a later one).
				if got, _ := strconv.ParseInt(r.MustDo("HGET", st.hashKey(b, id.String()), "d"), 10, 64); got < rec.Deadline.UnixMilli() {
					t.Fatalf("lookup returned deadline %d, the hash holds %d", rec.Deadline.UnixMilli(), got)
				}
				time.Sleep(time.Millisecond)
			}
			end := redisTime(t, r)
			writes := st.Stats().TouchWrites
			if other != st {
				writes += other.Stats().TouchWrites
			}
			max := uint64((end-start)/slack.Milliseconds()) + 2
			t.Logf("%d touches, %d writes in %d ms with a %v slack", touches, writes, end-start, slack)
			if writes > max || writes == 0 {
				t.Errorf("%d touch writes in %d ms, want 1..%d (one per slack)", writes, end-start, max)
			}
			if touches < 3*int(writes) {
				t.Logf("few touches (%d) on a slow machine: coalescing barely exercised", touches)
			}
		})
	}
}

// calls is the number of round trips of operation o so far.
func calls(st *Store, o op) uint64 {
	var n uint64
	for i := range st.st.ops[o].counts {
		n += st.st.ops[o].counts[i].Load()
	}
	return n
}

// A touching lookup costs one round trip, whether it writes or not: the
// one that must write runs the combined script, the one that need not an
// HMGET, as the process's hint for the session says.
func TestTouchOneRoundTrip(t *testing.T) {
	r := redistest.Server(t)
	const slack = 300 * time.Millisecond
	st := open(t, client(t, r.Addr), Options{Slack: slack}, sessions.StoreConfig{IdleTimeout: time.Second, Tick: time.Millisecond})
	id := newID(t)
	created, err := st.Create(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	waitRedisTime(t, r, created.Created.UnixMilli()) // so that the first touch must write
	type count struct{ lookups, touches, writes uint64 }
	now := func() count { return count{calls(st, opLookup), calls(st, opTouch), st.Stats().TouchWrites} }
	step := func(what string, want count) sessions.Record {
		t.Helper()
		c0 := now()
		before := redisTime(t, r)
		rec, err := st.Lookup(bg, id, true)
		if err != nil {
			t.Fatal(err)
		}
		c1 := now()
		if got := (count{c1.lookups - c0.lookups, c1.touches - c0.touches, c1.writes - c0.writes}); got != want {
			t.Fatalf("%s: %+v HMGETs, scripts and writes, want %+v", what, got, want)
		}
		if d := rec.Deadline.UnixMilli(); d < before+1000 {
			t.Fatalf("%s: deadline %d is earlier than the idle timeout from %d", what, d, before)
		}
		return rec
	}
	// Unknown to this process: the script, which writes (a creation's
	// deadline covers no touch after its millisecond).
	rec := step("first touch", count{0, 1, 1})
	// Within the slack: an HMGET and no write.
	step("touch within the slack", count{1, 0, 0})
	// Past the slack the hint says write: the script, once.
	waitRedisTime(t, r, rec.Deadline.UnixMilli()-1000)
	step("touch past the slack", count{0, 1, 1})
}

// A touch never brings back a session past its deadline or ended.
func TestTouchNeverResurrects(t *testing.T) {
	r := redistest.Server(t)
	st := open(t, client(t, r.Addr), Options{}, sessions.StoreConfig{IdleTimeout: 100 * time.Millisecond, Tick: 10 * time.Millisecond})
	id := newID(t)
	rec, err := st.Create(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	waitRedisTime(t, r, rec.Deadline.UnixMilli())
	if _, err := st.Lookup(bg, id, true); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("touch past the deadline = %v, want ErrNotFound", err)
	}
	// Even a touch script that runs (the client's estimate aside) refuses.
	b := st.bucket(id)
	v, err := st.run(bg, opTouch, b, touchScript, []string{st.keys[b].due, st.hashKey(b, id.String())}, []string{id.String(), "10", st.graceMs})
	if err != nil {
		t.Fatal(err)
	}
	if _, d, _ := two(v); d != -1 {
		t.Fatalf("touch script on an overdue session wrote deadline %d", d)
	}
	hk := st.hashKey(b, id.String())
	resurrects := func(when string) {
		t.Helper()
		d0, s0 := r.MustDo("HGET", hk, "d"), r.MustDo("ZSCORE", st.keys[b].due, id.String())
		if _, err := st.lookupTouch(bg, id, b, id.String(), hk); !errors.Is(err, sessions.ErrNotFound) {
			t.Fatalf("lookup-and-touch script on %s = %v, want ErrNotFound", when, err)
		}
		if d1, s1 := r.MustDo("HGET", hk, "d"), r.MustDo("ZSCORE", st.keys[b].due, id.String()); d1 != d0 || s1 != s0 {
			t.Fatalf("lookup-and-touch script on %s moved the deadline %s/%s to %s/%s", when, d0, s0, d1, s1)
		}
	}
	resurrects("an overdue session")
	due := claimAll(t, st, 1, 5*time.Second)
	if due[0].ID != id || due[0].Reason != sessions.Idle {
		t.Fatalf("claimed %+v, want %v Idle", due[0], id)
	}
	// Ending (claimed): still not touchable; values still readable.
	resurrects("a claimed session")
	if _, err := st.Lookup(bg, id, true); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("touch of a claimed session = %v, want ErrNotFound", err)
	}
	if err := st.SetValue(bg, id, "k", []byte("v")); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("SetValue on a claimed session = %v, want ErrNotFound", err)
	}
	if err := st.Ack(bg, due); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Lookup(bg, id, true); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("touch of an ended session = %v, want ErrNotFound", err)
	}
	if n := r.MustDo("EXISTS", st.hashKey(b, id.String())); n != "0" {
		t.Fatalf("hash of an acknowledged ending exists: %s", n)
	}
}

// Of two processes racing to end a session, exactly one wins.
func TestExpireOneWinner(t *testing.T) {
	r := redistest.Server(t)
	a := open(t, client(t, r.Addr), Options{}, cfg300)
	b := open(t, client(t, r.Addr), Options{}, cfg300)
	for round := range 200 {
		id := newID(t)
		if _, err := a.Create(bg, id); err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for _, st := range []*Store{a, b, a, b} {
			wg.Go(func() {
				e, err := st.Expire(bg, id)
				switch {
				case err == nil:
					wins.Add(1)
					if e.Reason != sessions.Explicit || e.ID != id {
						t.Errorf("round %d: ending %+v", round, e)
					}
				case !errors.Is(err, sessions.ErrNotFound):
					t.Errorf("round %d: %v", round, err)
				}
			})
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("round %d: %d winners", round, n)
		}
	}
}

// A session past its deadline that is expired explicitly ends for its own
// reason: Idle, or Absolute when its absolute deadline came first.
func TestExpireOverdueEndsForItsReason(t *testing.T) {
	r := redistest.Server(t)
	st := open(t, client(t, r.Addr), Options{}, sessions.StoreConfig{IdleTimeout: 100 * time.Millisecond, AbsoluteTimeout: 200 * time.Millisecond, Tick: 10 * time.Millisecond})
	idle, abs := newID(t), newID(t)
	ri, err := st.Create(bg, idle)
	if err != nil {
		t.Fatal(err)
	}
	ra, err := st.Create(bg, abs)
	if err != nil {
		t.Fatal(err)
	}
	// Keep abs busy until its absolute deadline caps it.
	for redisTime(t, r) < ra.Created.UnixMilli()+150 {
		if _, err := st.Lookup(bg, abs, true); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	rec, err := st.Lookup(bg, abs, true)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rec.Deadline, ra.Created.Add(200*time.Millisecond); !got.Equal(want) {
		t.Fatalf("deadline %v, want the absolute one %v", got, want)
	}
	waitRedisTime(t, r, max(ri.Deadline.UnixMilli(), rec.Deadline.UnixMilli()))
	for id, want := range map[sessions.ID]sessions.Reason{idle: sessions.Idle, abs: sessions.Absolute} {
		e, err := st.Expire(bg, id)
		if err != nil {
			t.Fatal(err)
		}
		if e.Reason != want {
			t.Errorf("overdue session expired as %v, want %v", e.Reason, want)
		}
	}
}

// Several processes claim concurrently: each ending is claimed exactly
// once, never before its deadline.
func TestClaimExactlyOnce(t *testing.T) {
	r := redistest.Server(t)
	const n = 600
	cfg := sessions.StoreConfig{IdleTimeout: 200 * time.Millisecond, Tick: 10 * time.Millisecond}
	var stores []*Store
	for range 3 {
		stores = append(stores, open(t, client(t, r.Addr), Options{Buckets: 8}, cfg))
	}
	deadlines := map[sessions.ID]int64{}
	for range n {
		id := newID(t)
		rec, err := stores[0].Create(bg, id)
		if err != nil {
			t.Fatal(err)
		}
		deadlines[id] = rec.Deadline.UnixMilli()
	}
	var mu sync.Mutex
	claimed := map[sessions.ID]int{}
	var early []string
	var wg sync.WaitGroup
	stop := time.Now().Add(20 * time.Second)
	for _, st := range stores {
		wg.Go(func() {
			for time.Now().Before(stop) {
				due, _, err := st.Claim(bg, 50) // small batches: more interleaving
				if err != nil {
					t.Error(err)
					return
				}
				now := redisTime(t, r)
				mu.Lock()
				for _, e := range due {
					claimed[e.ID]++
					if d := deadlines[e.ID]; now < d {
						early = append(early, e.ID.String())
					}
				}
				done := len(claimed) == n
				mu.Unlock()
				if err := st.Ack(bg, due); err != nil {
					t.Error(err)
				}
				if done {
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Wait()
	if len(claimed) != n {
		t.Fatalf("claimed %d of %d", len(claimed), n)
	}
	for id, c := range claimed {
		if c != 1 {
			t.Errorf("%v claimed %d times", id, c)
		}
	}
	if len(early) > 0 {
		t.Errorf("claimed before the deadline: %v", early)
	}
	var lost uint64
	for _, st := range stores {
		lost += st.Stats().LeasesLost + st.Stats().Redelivered
	}
	if lost != 0 {
		t.Errorf("%d leases lost or redelivered with a 30 s lease", lost)
	}
	if n, err := stores[0].Len(bg); err != nil || n != 0 {
		t.Errorf("Len = %d, %v after all acked", n, err)
	}
}

// A claim whose lease ran out is re-offered, and the first claimer's late
// Ack is refused: it cannot delete what another process now holds.
func TestStaleAckRefused(t *testing.T) {
	r := redistest.Server(t)
	cfg := sessions.StoreConfig{IdleTimeout: 50 * time.Millisecond, Tick: 10 * time.Millisecond}
	a := open(t, client(t, r.Addr), Options{Lease: 300 * time.Millisecond}, cfg)
	b := open(t, client(t, r.Addr), Options{Lease: 300 * time.Millisecond}, cfg)
	id := newID(t)
	if _, err := a.Create(bg, id); err != nil {
		t.Fatal(err)
	}
	if err := a.SetValue(bg, id, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	first := claimAll(t, a, 1, 5*time.Second)
	if first[0].Redelivered {
		t.Fatal("first claim marked redelivered")
	}
	// a stalls past its lease; b finds the ending re-offered.
	waitRedisTime(t, r, first[0].Lease)
	second := claimAll(t, b, 1, 5*time.Second)
	if second[0].ID != id || !second[0].Redelivered || second[0].Reason != sessions.Idle {
		t.Fatalf("re-offer %+v", second[0])
	}
	if second[0].Lease <= first[0].Lease {
		t.Fatalf("new lease %d not after the old %d", second[0].Lease, first[0].Lease)
	}
	if err := a.Ack(bg, first); err != nil {
		t.Fatal(err)
	}
	if got := a.Stats().LeasesLost; got != 1 {
		t.Errorf("LeasesLost = %d after a stale ack, want 1", got)
	}
	if v, err := b.Value(bg, id, "k"); err != nil || string(v) != "v" {
		t.Fatalf("after the refused ack, Value = %q, %v: the stale ack deleted the session", v, err)
	}
	if err := b.Ack(bg, second); err != nil {
		t.Fatal(err)
	}
	if got := b.Stats().LeasesLost; got != 0 {
		t.Errorf("LeasesLost = %d after a good ack", got)
	}
	if _, err := b.Value(bg, id, "k"); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("after the ack, Value = %v, want ErrNotFound", err)
	}
	if got := b.Stats().Redelivered; got != 1 {
		t.Errorf("Redelivered = %d, want 1", got)
	}
}

// A claimed ending's values stay readable until it is acknowledged, and
// the session cannot be changed meanwhile.
func TestValuesReadableUntilAck(t *testing.T) {
	r := redistest.Server(t)
	st := open(t, client(t, r.Addr), Options{}, sessions.StoreConfig{IdleTimeout: 100 * time.Millisecond, Tick: 10 * time.Millisecond})
	id := newID(t)
	if _, err := st.Create(bg, id); err != nil {
		t.Fatal(err)
	}
	if err := st.SetValue(bg, id, "user", []byte("ada")); err != nil {
		t.Fatal(err)
	}
	if err := st.SetValue(bg, id, "gone", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteValue(bg, id, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Value(bg, id, "gone"); !errors.Is(err, sessions.ErrNoValue) {
		t.Fatalf("deleted value: %v, want ErrNoValue", err)
	}
	due := claimAll(t, st, 1, 5*time.Second)
	if v, err := st.Value(bg, id, "user"); err != nil || string(v) != "ada" {
		t.Fatalf("Value while claimed = %q, %v", v, err)
	}
	if _, err := st.Value(bg, id, "none"); !errors.Is(err, sessions.ErrNoValue) {
		t.Fatalf("missing value while claimed: %v, want ErrNoValue", err)
	}
	if err := st.SetValue(bg, id, "user", []byte("eve")); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("SetValue while claimed = %v, want ErrNotFound", err)
	}
	if err := st.Ack(bg, due); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Value(bg, id, "user"); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("Value after Ack = %v, want ErrNotFound", err)
	}
}

// Renew moves values, owner, creation time and idle timeout to the new ID
// in the same bucket; the old ID stops working for every process.
func TestRenewMoves(t *testing.T) {
	r := redistest.Server(t)
	a := open(t, client(t, r.Addr), Options{}, cfg300)
	b := open(t, client(t, r.Addr), Options{}, cfg300)
	id := newID(t)
	orig, err := a.Create(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SetValue(bg, id, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := a.SetOwner(bg, id, "ada"); err != nil {
		t.Fatal(err)
	}
	if err := a.SetIdleTimeout(bg, id, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	// Let b see the session first: it must not keep believing in it.
	if _, err := b.Lookup(bg, id, false); err != nil {
		t.Fatal(err)
	}
	nid := newID(t)
	nid[0] = ^id[0] // another bucket, as the manager's random draw may give
	rec, err := a.Renew(bg, id, nid)
	if err != nil {
		t.Fatal(err)
	}
	if a.bucket(rec.ID) != a.bucket(id) || [15]byte(rec.ID[1:]) != [15]byte(nid[1:]) {
		t.Fatalf("renewed to %v: want nid %v in the bucket of %v", rec.ID, nid, id)
	}
	if !rec.Created.Equal(orig.Created) || rec.IdleTimeout != 2*time.Second || rec.Owner != "ada" {
		t.Errorf("renewed record %+v lost created/idle/owner of %+v", rec, orig)
	}
	for _, st := range []*Store{a, b} {
		if _, err := st.Lookup(bg, id, true); !errors.Is(err, sessions.ErrNotFound) {
			t.Errorf("old id after Renew: %v, want ErrNotFound", err)
		}
		if _, err := st.Value(bg, id, "k"); !errors.Is(err, sessions.ErrNotFound) {
			t.Errorf("old id's value after Renew: %v, want ErrNotFound", err)
		}
		if _, err := st.Expire(bg, id); !errors.Is(err, sessions.ErrNotFound) {
			t.Errorf("Expire of the old id after Renew: %v, want ErrNotFound", err)
		}
		got, err := st.Lookup(bg, rec.ID, false)
		if err != nil || !got.Created.Equal(orig.Created) || got.Owner != "ada" || got.IdleTimeout != 2*time.Second {
			t.Errorf("new id: %+v, %v", got, err)
		}
		if v, err := st.Value(bg, rec.ID, "k"); err != nil || string(v) != "v" {
			t.Errorf("new id's value: %q, %v", v, err)
		}
	}
	owned, err := b.Owned(bg, "ada")
	if err != nil || len(owned) != 1 || owned[0].ID != rec.ID {
		t.Errorf("Owned after Renew = %+v, %v; want the new id only", owned, err)
	}
	if _, err := a.Renew(bg, id, newID(t)); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("renewing the old id again: %v, want ErrNotFound", err)
	}
	// Renewing onto an ID in use is refused.
	other := newID(t)
	other[0] = rec.ID[0]
	if _, err := a.Create(bg, other); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Renew(bg, rec.ID, other); !errors.Is(err, sessions.ErrIDInUse) {
		t.Errorf("Renew onto a live id: %v, want ErrIDInUse", err)
	}
}

// SetIdleTimeout takes effect at once: a longer timeout keeps the session,
// a shorter one from its last touch makes it due.
func TestSetIdleTimeout(t *testing.T) {
	r := redistest.Server(t)
	st := open(t, client(t, r.Addr), Options{}, cfg300)
	long, short := newID(t), newID(t)
	for _, id := range []sessions.ID{long, short} {
		if _, err := st.Create(bg, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SetIdleTimeout(bg, long, time.Hour); err != nil {
		t.Fatal(err)
	}
	rec, err := st.Lookup(bg, long, false)
	if err != nil || rec.Deadline.Sub(rec.Created) != time.Hour || rec.IdleTimeout != time.Hour {
		t.Fatalf("long: %+v, %v", rec, err)
	}
	waitRedisTime(t, r, rec.Created.UnixMilli()+50)
	if err := st.SetIdleTimeout(bg, short, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	due := claimAll(t, st, 1, 5*time.Second)
	if due[0].ID != short || due[0].Reason != sessions.Idle {
		t.Fatalf("claimed %+v, want the shortened session", due[0])
	}
	if err := st.SetIdleTimeout(bg, short, time.Hour); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("SetIdleTimeout on an ending session: %v", err)
	}
	if err := st.SetIdleTimeout(bg, long, 0); !errors.Is(err, sessions.ErrInvalidTimeout) {
		t.Fatalf("SetIdleTimeout(0): %v", err)
	}
}

// Owned returns the owner's live sessions and forgets the others.
func TestOwned(t *testing.T) {
	r := redistest.Server(t)
	st := open(t, client(t, r.Addr), Options{}, cfg300)
	ids := make([]sessions.ID, 5)
	for i := range ids {
		ids[i] = newID(t)
		if _, err := st.Create(bg, ids[i]); err != nil {
			t.Fatal(err)
		}
		if err := st.SetOwner(bg, ids[i], "ada"); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SetOwner(bg, ids[0], "bob"); err != nil {
		t.Fatal(err)
	}
	if err := st.SetOwner(bg, ids[1], ""); err != nil {
		t.Fatal(err)
	}
	e, err := st.Expire(bg, ids[2])
	if err != nil {
		t.Fatal(err)
	}
	// An index entry left behind (as by a hash garbage-collected unacked).
	stray := newID(t)
	b := st.bucket(stray)
	r.MustDo("SADD", st.keys[b].owner+"ada", stray.String())

	got, err := st.Owned(bg, "ada")
	if err != nil {
		t.Fatal(err)
	}
	want := map[sessions.ID]bool{ids[3]: true, ids[4]: true}
	if len(got) != len(want) || !want[got[0].ID] || !want[got[1].ID] {
		t.Fatalf("Owned(ada) = %+v, want %v and %v", got, ids[3], ids[4])
	}
	if bob, err := st.Owned(bg, "bob"); err != nil || len(bob) != 1 || bob[0].ID != ids[0] {
		t.Fatalf("Owned(bob) = %+v, %v", bob, err)
	}
	if ok := r.MustDo("SISMEMBER", st.keys[b].owner+"ada", stray.String()); ok != "0" {
		t.Errorf("stray index entry not pruned")
	}
	if err := st.Ack(bg, []sessions.Ending{e}); err != nil {
		t.Fatal(err)
	}
	b2 := st.bucket(ids[2])
	if ok := r.MustDo("SISMEMBER", st.keys[b2].owner+"ada", ids[2].String()); ok != "0" {
		t.Errorf("acknowledged session still in its owner's index")
	}
}

// Len counts the sessions not yet claimed; Range visits the live ones.
func TestLenRange(t *testing.T) {
	r := redistest.Server(t)
	st := open(t, client(t, r.Addr), Options{}, cfg300)
	want := map[sessions.ID]bool{}
	for range 50 {
		id := newID(t)
		want[id] = true
		if _, err := st.Create(bg, id); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := st.Len(bg); err != nil || n != 50 {
		t.Fatalf("Len = %d, %v", n, err)
	}
	got := map[sessions.ID]bool{}
	if err := st.Range(bg, func(id sessions.ID) bool { got[id] = true; return true }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("Range saw %d of %d", len(got), len(want))
	}
	for id := range want {
		if !got[id] {
			t.Fatalf("Range missed %v", id)
		}
	}
	n := 0
	if err := st.Range(bg, func(sessions.ID) bool { n++; return n < 3 }); err != nil || n != 3 {
		t.Fatalf("Range did not stop: %d, %v", n, err)
	}
}

// Claim never takes more than asked, even with fewer asked than buckets,
// reports the backlog it leaves, and hints at the next deadline.
func TestClaimRespectsMax(t *testing.T) {
	r := redistest.Server(t)
	st := open(t, client(t, r.Addr), Options{Poll: time.Hour}, sessions.StoreConfig{IdleTimeout: 100 * time.Millisecond, Tick: 10 * time.Millisecond})
	var last int64
	for range 20 {
		rec, err := st.Create(bg, newID(t))
		if err != nil {
			t.Fatal(err)
		}
		last = max(last, rec.Deadline.UnixMilli())
	}
	waitRedisTime(t, r, last)
	due, next, err := st.Claim(bg, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 3 {
		t.Fatalf("Claim(3) returned %d", len(due))
	}
	if got := st.Stats().DueBacklog; got != 17 {
		t.Errorf("DueBacklog = %d, want 17", got)
	}
	if next.After(time.Now()) {
		t.Errorf("next = %v with 17 due: want now", next)
	}
	got := len(due)
	for got < 20 {
		due, _, err := st.Claim(bg, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(due) > 3 {
			t.Fatalf("Claim(3) returned %d", len(due))
		}
		got += len(due)
	}
	// Nothing due but one session a second ahead (a store whose idle
	// timeout, 2 s, caps the hint): the hint is its deadline.
	st2 := open(t, client(t, r.Addr), Options{Poll: time.Hour}, sessions.StoreConfig{IdleTimeout: 2 * time.Second, Tick: 10 * time.Millisecond})
	id := newID(t)
	if _, err := st2.Create(bg, id); err != nil {
		t.Fatal(err)
	}
	if err := st2.SetIdleTimeout(bg, id, time.Second); err != nil {
		t.Fatal(err)
	}
	due, next, err = st2.Claim(bg, 100)
	if err != nil || len(due) != 0 {
		t.Fatalf("Claim = %v, %v", due, err)
	}
	if wait := time.Until(next); wait <= 0 || wait > time.Second {
		t.Errorf("next in %v, want within the session's 1 s", wait)
	}
	if st.Stats().Claims == 0 || st2.Stats().EmptyClaims != 1 {
		t.Errorf("claim counters: %d claims, %d empty claims", st.Stats().Claims, st2.Stats().EmptyClaims)
	}
}

// Touches through one process keep a session alive for the claimer in
// another; once they stop, it ends one idle timeout (plus at most a slack)
// after the last touch, never before.
func TestTouchFromOtherProcessKeepsAlive(t *testing.T) {
	r := redistest.Server(t)
	cfg := sessions.StoreConfig{IdleTimeout: 300 * time.Millisecond, Tick: 20 * time.Millisecond}
	a := open(t, client(t, r.Addr), Options{}, cfg)
	b := open(t, client(t, r.Addr), Options{}, cfg)
	id := newID(t)
	rec, err := a.Create(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	var lastTouch int64
	for redisTime(t, r) < rec.Created.UnixMilli()+1000 {
		lastTouch = redisTime(t, r)
		if _, err := b.Lookup(bg, id, true); err != nil {
			t.Fatalf("touch at Redis time %d: %v", lastTouch, err)
		}
		due, _, err := a.Claim(bg, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(due) > 0 {
			t.Fatalf("claimed a session touched %d ms ago", redisTime(t, r)-lastTouch)
		}
		time.Sleep(20 * time.Millisecond)
	}
	due := claimAll(t, a, 1, 5*time.Second)
	if now := redisTime(t, r); now < lastTouch+300 {
		t.Fatalf("claimed at Redis time %d, %d ms after the last touch: before the idle timeout", now, now-lastTouch)
	}
	if due[0].ID != id || due[0].Reason != sessions.Idle {
		t.Fatalf("claimed %+v", due[0])
	}
}

// With ClientCache, lookups are served from the client's cache (they go on
// working while Redis is stalled), and a logout through another process
// reaches them through Redis's invalidation, long before the cache's TTL.
func TestClientCacheSeesLogout(t *testing.T) {
	r := redistest.Server(t)
	cc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{r.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Close)
	cfg := sessions.StoreConfig{IdleTimeout: 300 * time.Millisecond, Tick: 10 * time.Millisecond}
	a := open(t, client(t, r.Addr), Options{}, cfg)
	b := open(t, cc, Options{ClientCache: time.Minute, Timeout: 100 * time.Millisecond}, cfg)
	id := newID(t)
	if _, err := a.Create(bg, id); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lookup(bg, id, false); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	_, err = b.Lookup(bg, id, false)
	r.Cont()
	if err != nil {
		t.Fatalf("cached lookup with Redis stalled: %v", err)
	}
	// Touched through a past the deadline b cached: b still sees it alive
	// (invalidated, or re-read when the cached deadline has passed).
	rec, err := a.Lookup(bg, id, false)
	if err != nil {
		t.Fatal(err)
	}
	for redisTime(t, r) < rec.Deadline.UnixMilli()+100 {
		if _, err := a.Lookup(bg, id, true); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := b.Lookup(bg, id, false); err != nil {
		t.Fatalf("b lost a session kept alive through a: %v", err)
	}
	if _, err := a.Expire(bg, id); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "b to see the logout", func() bool {
		_, err := b.Lookup(bg, id, false)
		return errors.Is(err, sessions.ErrNotFound)
	})
}
