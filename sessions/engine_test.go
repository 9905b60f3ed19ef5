package sessions_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionwheel/sessionwheel/sessions"
)

// 1. An untouched session ends with Idle never before IdleTimeout and at
// most two ticks after, wherever in a tick it was created.
func TestIdleEndsOnTime(t *testing.T) {
	for _, offset := range []time.Duration{0, 300 * time.Millisecond, 999 * time.Millisecond} {
		t.Run(fmt.Sprint(offset), func(t *testing.T) {
			m, clk, log := newManager(t, sessions.Config{})
			clk.Advance(offset)
			created := clk.Now()
			s := mustCreate(t, m)
			for clk.Now().Sub(created) < 10*time.Second {
				if len(log.get(s.ID())) != 0 {
					t.Fatalf("ended %v after creation, before the idle timeout", clk.Now().Sub(created))
				}
				step(m, clk, 100*time.Millisecond)
			}
			for len(log.get(s.ID())) == 0 && clk.Now().Sub(created) <= 13*time.Second {
				step(m, clk, 100*time.Millisecond)
			}
			ends := log.get(s.ID())
			if len(ends) != 1 || ends[0].reason != sessions.Idle {
				t.Fatalf("endings %v, want one Idle", ends)
			}
			if late := ends[0].at.Sub(created) - 10*time.Second; late < 0 || late > 2*tick {
				t.Fatalf("ended %v after the idle timeout, want within 2 ticks", late)
			}
		})
	}
}

// 2. Touching every IdleTimeout - 1 tick for 100 periods keeps it alive; it
// ends IdleTimeout after the last touch.
func TestTouchKeepsAlive(t *testing.T) {
	m, clk, log := newManager(t, sessions.Config{})
	s := mustCreate(t, m)
	var last time.Time
	for range 100 {
		for range 9 {
			step(m, clk, tick)
		}
		if _, ok := m.Get(s.ID()); !ok {
			t.Fatalf("session ended although touched every 9 s, at %v", clk.Now())
		}
		last = clk.Now()
	}
	if st := m.Stats(); st.Refiles > 110 {
		t.Fatalf("%d re-files for 100 idle periods: touches are moving the wheel entry", st.Refiles)
	}
	for len(log.get(s.ID())) == 0 && clk.Now().Sub(last) < 15*time.Second {
		step(m, clk, tick)
	}
	ends := log.get(s.ID())
	if len(ends) != 1 {
		t.Fatalf("endings %v", ends)
	}
	if d := ends[0].at.Sub(last); d < 10*time.Second || d > 12*time.Second {
		t.Fatalf("ended %v after the last touch, want 10-12 s", d)
	}
}

// 3. A session's own idle timeout, shorter or longer than the manager's,
// takes effect at once, counted from the last touch.
func TestPerSessionIdleTimeout(t *testing.T) {
	m, clk, log := newManager(t, sessions.Config{})
	short, long, later := mustCreate(t, m), mustCreate(t, m), mustCreate(t, m)
	start := clk.Now()
	if err := short.SetIdleTimeout(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := long.SetIdleTimeout(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got := long.IdleTimeout(); got != 30*time.Second {
		t.Fatalf("IdleTimeout() = %v", got)
	}
	for _, d := range []time.Duration{0, -time.Second, 1 << 62} {
		if err := short.SetIdleTimeout(d); !errors.Is(err, sessions.ErrInvalidTimeout) {
			t.Fatalf("SetIdleTimeout(%v) = %v, want ErrInvalidTimeout", d, err)
		}
	}
	step(m, clk, 5*time.Second)
	// Shortened to 2 s when 5 s have passed since the last touch: due now.
	if err := later.SetIdleTimeout(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if later.Alive() {
		t.Fatal("session whose new timeout has passed is still alive")
	}
	for clk.Now().Sub(start) < 40*time.Second {
		step(m, clk, tick)
	}
	check := func(name string, s sessions.Session, lo, hi time.Duration) {
		ends := log.get(s.ID())
		if len(ends) != 1 || ends[0].reason != sessions.Idle {
			t.Fatalf("%s: endings %v", name, ends)
		}
		if d := ends[0].at.Sub(start); d < lo || d > hi {
			t.Fatalf("%s: ended after %v, want %v-%v", name, d, lo, hi)
		}
	}
	check("short", short, 3*time.Second, 5*time.Second)
	check("long", long, 30*time.Second, 32*time.Second)
	check("later", later, 5*time.Second, 6*time.Second)
}

// 4. AbsoluteTimeout ends a constantly touched session with Absolute.
func TestAbsoluteTimeout(t *testing.T) {
	m, clk, log := newManager(t, sessions.Config{AbsoluteTimeout: 30 * time.Second})
	start := clk.Now()
	s := mustCreate(t, m)
	for len(log.get(s.ID())) == 0 && clk.Now().Sub(start) < time.Minute {
		m.Touch(s.ID())
		step(m, clk, tick)
	}
	ends := log.get(s.ID())
	if len(ends) != 1 || ends[0].reason != sessions.Absolute {
		t.Fatalf("endings %v, want one Absolute", ends)
	}
	if d := ends[0].at.Sub(start); d < 30*time.Second || d > 32*time.Second {
		t.Fatalf("ended after %v, want 30-32 s", d)
	}
}

// 5. Expire is idempotent; callbacks run exactly once, in registration
// order, then OnExpire, with reason Explicit.
func TestExpireIdempotentAndOrdered(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	rec := func(name string) func(sessions.Session, sessions.Reason) {
		return func(_ sessions.Session, r sessions.Reason) {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, name+":"+r.String())
		}
	}
	m, clk, _ := newManager(t, sessions.Config{OnExpire: rec("manager")})
	s := mustCreate(t, m)
	for _, n := range []string{"a", "b", "c"} {
		if err := s.NotifyOnExpire(rec(n)); err != nil {
			t.Fatal(err)
		}
	}
	if !m.Expire(s.ID()) {
		t.Fatal("first Expire reported the session dead")
	}
	if m.Expire(s.ID()) {
		t.Fatal("second Expire reported the session alive")
	}
	if err := s.Expire(); !errors.Is(err, sessions.ErrEnded) {
		t.Fatalf("Session.Expire after Expire = %v, want ErrEnded", err)
	}
	step(m, clk, time.Minute)
	want := []string{"a:explicit", "b:explicit", "c:explicit", "manager:explicit"}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(calls, want) {
		t.Fatalf("callbacks %v, want %v", calls, want)
	}
	if st := m.Stats(); st.Ended[sessions.Explicit] != 1 || st.Ended[sessions.Idle] != 0 {
		t.Fatalf("ended counts %v", st.Ended)
	}
}

// 6. A panicking callback is recovered and counted; the callbacks after it
// still run.
func TestPanickingCallback(t *testing.T) {
	var ran atomic.Int32
	m, clk, log := newManager(t, sessions.Config{})
	s := mustCreate(t, m)
	s.NotifyOnExpire(func(sessions.Session, sessions.Reason) { ran.Add(1) })
	s.NotifyOnExpire(func(sessions.Session, sessions.Reason) { panic("boom") })
	s.NotifyOnExpire(func(sessions.Session, sessions.Reason) { panic(nil) })
	s.NotifyOnExpire(func(sessions.Session, sessions.Reason) { ran.Add(1) })
	step(m, clk, time.Minute)
	if ran.Load() != 2 || len(log.get(s.ID())) != 1 {
		t.Fatalf("callbacks after the panics did not all run: %d of 2, OnExpire %d", ran.Load(), len(log.get(s.ID())))
	}
	if p := m.Stats().CallbackPanics; p != 2 {
		t.Fatalf("CallbackPanics = %d, want 2", p)
	}
	if _, err := m.Create(); err != nil {
		t.Fatalf("manager broken after panics: %v", err)
	}
}

// Stats.CallbackDuration has one observation per ending, the time that
// ending's callbacks took together: a slow ending's time is its own, and
// not carried into the endings after it in the same batch.
func TestCallbackDuration(t *testing.T) {
	const slow = 3 * time.Millisecond
	m, clk, _ := newManager(t, sessions.Config{Workers: 1})
	first := mustCreate(t, m) // filed first, so it runs first in the batch
	first.NotifyOnExpire(func(sessions.Session, sessions.Reason) {
		for t0 := time.Now(); time.Since(t0) < slow; { // busy: a lower bound on real time, whatever the machine
		}
	})
	mustCreate(t, m)
	mustCreate(t, m)
	step(m, clk, time.Minute) // all three end in one sweep, one batch
	h := m.Stats().CallbackDuration
	if h.Count != 3 {
		t.Fatalf("CallbackDuration.Count = %d, want 3", h.Count)
	}
	if h.Sum < slow.Seconds() {
		t.Fatalf("CallbackDuration.Sum = %gs, want at least %v", h.Sum, slow)
	}
	over := uint64(0) // observations above 1 ms
	for i, c := range h.Counts {
		if i > 0 && h.Bounds[i-1] >= 0.001 {
			over += c
		}
	}
	if over != 1 {
		t.Fatalf("%d endings took over 1 ms (%v), want only the slow one", over, h.Counts)
	}
}

// 7. A callback may call Create, Get, Expire and read the ending session on
// the same manager without deadlock, even with one worker and a queue of
// one.
func TestCallbackReentry(t *testing.T) {
	var created atomic.Int32
	var sawValue, foundSelf atomic.Bool
	m, _, log := newManager(t, sessions.Config{Workers: 1, QueueLen: 1})
	a, b := mustCreate(t, m), mustCreate(t, m)
	a.Set("user", "alice")
	a.NotifyOnExpire(func(s sessions.Session, r sessions.Reason) {
		if v, err := s.Get("user"); err == nil && v == "alice" {
			sawValue.Store(true)
		}
		if _, ok := m.Get(s.ID()); ok {
			foundSelf.Store(true)
		}
		if _, err := m.Create(); err == nil {
			created.Add(1)
		}
		m.Expire(b.ID())
	})
	a.Expire()
	m.Sweep()
	if !sawValue.Load() {
		t.Error("callback could not read the ending session's value")
	}
	if foundSelf.Load() {
		t.Error("Get found the session from inside its own expiry callback")
	}
	if created.Load() != 1 {
		t.Error("Create from a callback failed")
	}
	if ends := log.get(b.ID()); len(ends) != 1 || ends[0].reason != sessions.Explicit {
		t.Errorf("session expired from a callback: endings %v", ends)
	}
	if err := a.Set("x", 1); !errors.Is(err, sessions.ErrEnded) {
		t.Errorf("Set after ending = %v, want ErrEnded", err)
	}
}

// 8a. Once the deadline has passed, no lookup or touch returns or revives
// the session, even before the driver has ended it.
func TestNoResurrectionBeforeSweep(t *testing.T) {
	m, clk, log := newManager(t, sessions.Config{})
	s := mustCreate(t, m)
	clk.Advance(11 * tick) // deadline passed; a sweep may or may not have run
	if _, ok := m.Get(s.ID()); ok {
		t.Fatal("Get returned a session past its deadline")
	}
	if m.Touch(s.ID()) {
		t.Fatal("Touch revived a session past its deadline")
	}
	if err := s.Touch(); err == nil {
		t.Fatal("Session.Touch revived a session past its deadline")
	}
	if s.Alive() {
		t.Fatal("Alive past the deadline")
	}
	m.Sweep()
	if ends := log.get(s.ID()); len(ends) != 1 || ends[0].reason != sessions.Idle {
		t.Fatalf("endings %v, want one Idle", ends)
	}
}

// 8b. Touches racing the driver's decisions: a session that has been seen
// ended is never found again, and each session ends exactly once.
func TestTouchRacingEnd(t *testing.T) {
	m, clk, log := newManager(t, sessions.Config{IdleTimeout: 3 * time.Second})
	const n = 200
	ids := make([]sessions.ID, n)
	var ended [n]atomic.Bool
	idx := map[sessions.ID]int{}
	for i := range ids {
		s := mustCreate(t, m)
		ids[i] = s.ID()
		idx[s.ID()] = i
		s.NotifyOnExpire(func(s sessions.Session, _ sessions.Reason) { ended[idx[s.ID()]].Store(true) })
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var resurrected atomic.Int32
	for g := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := r.IntN(n)
				if i%2 == 0 && r.IntN(4) != 0 {
					continue // even sessions are touched rarely and die
				}
				was := ended[i].Load()
				if _, ok := m.Get(ids[i]); ok && was {
					resurrected.Add(1)
				}
			}
		})
	}
	for range 60 {
		clk.Advance(500 * time.Millisecond)
		m.Sweep()
	}
	close(stop)
	wg.Wait()
	if resurrected.Load() != 0 {
		t.Fatalf("%d lookups found a session after its callback had run", resurrected.Load())
	}
	for i, id := range ids {
		if e := log.get(id); len(e) > 1 {
			t.Fatalf("session %d ended %d times", i, len(e))
		}
		if _, ok := m.Peek(id); ok == ended[i].Load() {
			t.Fatalf("session %d: alive=%v but ended=%v", i, ok, ended[i].Load())
		}
	}
}

// 9. Unknown and ended IDs are not found; a stale handle reports ErrEnded and
// never reaches the data of the session that reuses its slot.
func TestStaleHandles(t *testing.T) {
	m, _, _ := newManager(t, sessions.Config{Shards: 1})
	var unknown sessions.ID
	unknown[0] = 1
	if _, ok := m.Get(unknown); ok {
		t.Fatal("unknown id found")
	}
	old := mustCreate(t, m)
	old.Set("k", "old")
	old.Expire()
	m.Sweep()
	// One shard and a LIFO free list: the next session takes the same slot.
	fresh := mustCreate(t, m)
	fresh.Set("k", "new")
	if _, ok := m.Get(old.ID()); ok {
		t.Fatal("ended id found")
	}
	if v, err := old.Get("k"); !errors.Is(err, sessions.ErrEnded) {
		t.Fatalf("stale Get = %v, %v; want ErrEnded", v, err)
	}
	for name, err := range map[string]error{
		"Set":            old.Set("k", "x"),
		"Delete":         old.Delete("k"),
		"Touch":          old.Touch(),
		"Expire":         old.Expire(),
		"NotifyOnExpire": old.NotifyOnExpire(func(sessions.Session, sessions.Reason) {}),
		"SetIdleTimeout": old.SetIdleTimeout(time.Hour),
	} {
		if !errors.Is(err, sessions.ErrEnded) {
			t.Errorf("stale %s = %v, want ErrEnded", name, err)
		}
	}
	if !old.CreatedAt().IsZero() || !old.Deadline().IsZero() || old.IdleTimeout() != 0 {
		t.Error("stale handle reports times")
	}
	if v, err := fresh.Get("k"); err != nil || v != "new" {
		t.Fatalf("new session's value %v, %v", v, err)
	}
	var zero sessions.Session
	if err := zero.Touch(); !errors.Is(err, sessions.ErrEnded) || zero.Alive() {
		t.Fatalf("zero Session: %v", err)
	}
	if _, err := fresh.Get("missing"); !errors.Is(err, sessions.ErrNoValue) {
		t.Fatalf("missing key: %v", err)
	}
}

// 10. MaxSessions: Create beyond it fails cleanly and existing sessions are
// unaffected; with Evict, the session due first makes room.
func TestMaxSessions(t *testing.T) {
	m, _, log := newManager(t, sessions.Config{MaxSessions: 5})
	var live []sessions.Session
	for range 5 {
		s := mustCreate(t, m)
		s.Set("v", s.ID())
		live = append(live, s)
	}
	if _, err := m.Create(); !errors.Is(err, sessions.ErrTooManySessions) {
		t.Fatalf("6th Create = %v, want ErrTooManySessions", err)
	}
	for _, s := range live {
		if v, err := s.Get("v"); err != nil || v != s.ID() {
			t.Fatalf("existing session damaged: %v %v", v, err)
		}
	}
	if st := m.Stats(); st.CreateFailedFull != 1 || st.Active != 5 || log.count() != 0 {
		t.Fatalf("stats %+v, endings %d", st, log.count())
	}
	live[0].Expire()
	if _, err := m.Create(); err != nil {
		t.Fatalf("Create after a logout: %v", err)
	}
}

func TestMaxSessionsEvict(t *testing.T) {
	m, clk, log := newManager(t, sessions.Config{MaxSessions: 3, Evict: true, Shards: 1})
	a := mustCreate(t, m)
	step(m, clk, tick)
	b, c := mustCreate(t, m), mustCreate(t, m)
	step(m, clk, tick)
	m.Touch(a.ID()) // a is now the most recently used; b is due first
	d := mustCreate(t, m)
	m.Sweep()
	if ends := log.get(b.ID()); len(ends) != 1 || ends[0].reason != sessions.Evicted {
		t.Fatalf("b: endings %v, want Evicted", ends)
	}
	for _, s := range []sessions.Session{a, c, d} {
		if !s.Alive() {
			t.Fatalf("%v evicted", s)
		}
	}
	if m.Len() != 3 {
		t.Fatalf("Len = %d, want 3", m.Len())
	}
}

// 11. A clock jump of 30 days ends every due session in one advance, with
// work bounded by buckets, not ticks; a jump back ends nothing early.
func TestClockJump(t *testing.T) {
	m, clk, log := newManager(t, sessions.Config{Tick: 10 * time.Millisecond, Shards: 4})
	const n = 1000
	for i := range n {
		s := mustCreate(t, m)
		s.SetIdleTimeout(time.Duration(i+1) * 3 * time.Second) // 3 s to 50 min
	}
	keep := mustCreate(t, m)
	keep.SetIdleTimeout(40 * 24 * time.Hour)

	clk.Advance(-time.Hour) // the wall clock steps back: nothing may end
	if m.Sweep(); log.count() != 0 || m.Len() != n+1 {
		t.Fatalf("backward jump ended %d sessions", log.count())
	}
	before := m.Stats().BucketVisits
	clk.Jump(time.Hour + 30*24*time.Hour) // the timer fires once, 30 days late; the driver or Sweep ends them
	m.Sweep()
	if got := log.count(); got != n {
		t.Fatalf("after the jump %d sessions ended, want %d", got, n)
	}
	visits := m.Stats().BucketVisits - before
	// 4 shards x 11 levels x 64 buckets bounds the buckets that can be
	// occupied; the jump crossed 259 million ticks.
	if visits > 4*11*64 {
		t.Fatalf("jump visited %d buckets", visits)
	}
	t.Logf("30-day jump: %d sessions ended, %d bucket visits", n, visits)
	if !keep.Alive() {
		t.Fatal("a session due in 40 days ended")
	}
}

// 12. Close ends the rest with Shutdown and runs their callbacks, then every
// call reports ErrClosed (goleak in TestMain checks the goroutines).
func TestClose(t *testing.T) {
	m, _, log := newManager(t, sessions.Config{})
	a, b := mustCreate(t, m), mustCreate(t, m)
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, s := range []sessions.Session{a, b} {
		if ends := log.get(s.ID()); len(ends) != 1 || ends[0].reason != sessions.Shutdown {
			t.Fatalf("endings %v, want Shutdown", ends)
		}
	}
	if _, err := m.Create(); !errors.Is(err, sessions.ErrClosed) {
		t.Fatalf("Create after Close = %v", err)
	}
	if _, err := m.Renew(a.ID()); !errors.Is(err, sessions.ErrClosed) {
		t.Fatalf("Renew after Close = %v", err)
	}
	if err := a.Touch(); !errors.Is(err, sessions.ErrClosed) {
		t.Fatalf("Touch after Close = %v", err)
	}
	if _, ok := m.Get(a.ID()); ok || m.Len() != 0 {
		t.Fatal("session found after Close")
	}
	if err := m.Close(context.Background()); !errors.Is(err, sessions.ErrClosed) {
		t.Fatalf("second Close = %v", err)
	}
	if st := m.Stats(); st.Ended[sessions.Shutdown] != 2 || st.CreateFailedClosed != 1 {
		t.Fatalf("stats after Close: %+v", st)
	}
}

func TestCloseWaitsForCallbacksOrContext(t *testing.T) {
	m, _, _ := newManager(t, sessions.Config{})
	s := mustCreate(t, m)
	started, release := make(chan struct{}), make(chan struct{})
	s.NotifyOnExpire(func(sessions.Session, sessions.Reason) {
		close(started)
		<-release
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	if err := m.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close with a stuck callback = %v, want context.Canceled", err)
	}
	close(release) // the worker finishes; goleak checks it exits
}

func TestDiscardOnClose(t *testing.T) {
	m, _, log := newManager(t, sessions.Config{DiscardOnClose: true})
	mustCreate(t, m)
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := m.Stats(); log.count() != 0 || st.Ended[sessions.Shutdown] != 0 || m.Len() != 0 || st.Discarded != 1 {
		t.Fatal("DiscardOnClose ran callbacks or counted endings")
	}
}

// 14. Many goroutines create, touch, renew and expire while the clock moves:
// afterwards created = live + ended, exactly, and every ending ran its
// callback once.
func TestConcurrentAccounting(t *testing.T) {
	m, clk, log := newManager(t, sessions.Config{IdleTimeout: 2 * time.Second, Tick: 100 * time.Millisecond, MaxSessions: 3000})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 2))
			var mine []sessions.ID
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				switch op := r.IntN(10); {
				case op < 3 || len(mine) == 0:
					if s, err := m.Create(); err == nil {
						mine = append(mine, s.ID())
					} else if !errors.Is(err, sessions.ErrTooManySessions) {
						t.Error(err)
						return
					}
				case op < 7:
					m.Get(mine[r.IntN(len(mine))])
				case op < 8:
					j := r.IntN(len(mine))
					if s, err := m.Renew(mine[j]); err == nil {
						mine[j] = s.ID()
					}
				default:
					m.Expire(mine[r.IntN(len(mine))])
				}
				if len(mine) > 500 {
					mine = mine[250:]
				}
			}
		})
	}
	for range 100 {
		clk.Advance(100 * time.Millisecond)
		if rand.IntN(3) == 0 {
			m.Sweep()
		}
	}
	close(stop)
	wg.Wait()
	m.Sweep()
	st := m.Stats()
	var ended uint64
	for _, n := range st.Ended {
		ended += n
	}
	if st.Created != uint64(st.Active)+ended {
		t.Fatalf("created %d != active %d + ended %d", st.Created, st.Active, ended)
	}
	if uint64(log.count()) != ended {
		t.Fatalf("%d callbacks for %d endings", log.count(), ended)
	}
	t.Logf("created %d, active %d, ended %v, renewed %d, refused %d", st.Created, st.Active, st.Ended, st.Renewed, st.CreateFailedFull)
}

func TestRenew(t *testing.T) {
	m, clk, log := newManager(t, sessions.Config{})
	s := mustCreate(t, m)
	created := s.CreatedAt()
	s.Set("user", "alice")
	var called atomic.Int32
	s.NotifyOnExpire(func(sessions.Session, sessions.Reason) { called.Add(1) })
	step(m, clk, 5*time.Second)
	r, err := m.Renew(s.ID())
	if err != nil {
		t.Fatal(err)
	}
	if r.ID() == s.ID() {
		t.Fatal("Renew kept the id")
	}
	if _, ok := m.Get(s.ID()); ok {
		t.Fatal("old id still works")
	}
	if err := s.Touch(); !errors.Is(err, sessions.ErrEnded) {
		t.Fatalf("old handle Touch = %v", err)
	}
	if v, err := r.Get("user"); err != nil || v != "alice" {
		t.Fatalf("value lost: %v %v", v, err)
	}
	if !r.CreatedAt().Equal(created) || created.IsZero() {
		t.Fatalf("creation time changed: %v", r.CreatedAt())
	}
	if called.Load() != 0 || log.count() != 0 {
		t.Fatal("Renew ran callbacks")
	}
	r.Expire()
	m.Sweep()
	if called.Load() != 1 {
		t.Fatal("callback not carried over to the new id")
	}
	if _, err := m.Renew(r.ID()); !errors.Is(err, sessions.ErrEnded) {
		t.Fatalf("Renew of an ended session = %v", err)
	}
	if st := m.Stats(); st.Renewed != 1 || st.Created != 1 || st.Touches != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRangeAndLen(t *testing.T) {
	m, _, _ := newManager(t, sessions.Config{})
	want := map[sessions.ID]bool{}
	for range 50 {
		want[mustCreate(t, m).ID()] = true
	}
	gone := mustCreate(t, m)
	gone.Expire()
	got := map[sessions.ID]bool{}
	m.Range(func(s sessions.Session) bool {
		got[s.ID()] = true
		return true
	})
	if len(got) != 50 || m.Len() != 50 {
		t.Fatalf("Range saw %d, Len %d, want 50", len(got), m.Len())
	}
	for id := range want {
		if !got[id] {
			t.Fatal("Range missed a session")
		}
	}
	n := 0
	m.Range(func(sessions.Session) bool { n++; return n < 3 })
	if n != 3 {
		t.Fatalf("Range went on after false: %d", n)
	}
}

func TestGetStringRejects(t *testing.T) {
	m, _, _ := newManager(t, sessions.Config{})
	s := mustCreate(t, m)
	if got, ok := m.GetString(s.ID().String()); !ok || got.ID() != s.ID() {
		t.Fatal("valid text not found")
	}
	for _, bad := range []string{"", "x", s.ID().String() + "A", "!!!!!!!!!!!!!!!!!!!!!!"} {
		if _, ok := m.GetString(bad); ok {
			t.Fatalf("GetString(%q) found a session", bad)
		}
	}
	if st := m.Stats(); st.LookupRejected != 4 || st.LookupHits != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]sessions.Config{
		"tick":      {Tick: time.Microsecond},
		"idle":      {IdleTimeout: -1},
		"idle-huge": {IdleTimeout: 1 << 62, Tick: time.Millisecond},
		"absolute":  {AbsoluteTimeout: -1},
		"max":       {MaxSessions: -1},
		"shards":    {Shards: 3},
		"shards2":   {Shards: 512},
		"workers":   {Workers: -1},
		"queue":     {QueueLen: -1},
		"maxshards": {Shards: 1, MaxSessions: sessions.MaxShardSessions + 1},
	} {
		if _, err := sessions.New(cfg); !errors.Is(err, sessions.ErrInvalidConfig) {
			t.Errorf("%s: New = %v, want ErrInvalidConfig", name, err)
		}
	}
	m, err := sessions.New(sessions.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	if c := m.Config(); c.IdleTimeout != 15*time.Minute || c.Tick != time.Second || c.Shards != sessions.DefaultShards {
		t.Fatalf("defaults %+v", c)
	}
}

func TestCallbackBackpressure(t *testing.T) {
	// A queue of 4 and a slow worker: the driver waits, nothing is dropped.
	var n atomic.Int32
	m, clk, _ := newManager(t, sessions.Config{Workers: 1, QueueLen: 4, OnExpire: func(sessions.Session, sessions.Reason) { n.Add(1) }})
	for range 2000 {
		mustCreate(t, m)
	}
	step(m, clk, time.Minute)
	if n.Load() != 2000 || m.Stats().CallbackQueue != 0 {
		t.Fatalf("%d of 2000 callbacks ran", n.Load())
	}
}

// A touch made while the manager's timers run late (a starved process) is
// dated by the clock, not by the timers: the session still lives its whole
// idle timeout after it.
func TestLateTimerNeverEndsEarly(t *testing.T) {
	m, clk, log := newManager(t, sessions.Config{})
	s := mustCreate(t, m)
	clk.Skip(1900 * time.Millisecond) // the timer due at 1 s has not run
	if err := s.Touch(); err != nil { // real time 1.9 s, dated by tick 0
		t.Fatal(err)
	}
	touched := clk.Now()
	clk.Jump(0) // the timer runs, 0.9 s late
	for clk.Now().Sub(touched) < 10*time.Second {
		if len(log.get(s.ID())) != 0 || !s.Alive() {
			t.Fatalf("ended %v after a touch, before the 10 s idle timeout", clk.Now().Sub(touched))
		}
		step(m, clk, 100*time.Millisecond)
	}
	for len(log.get(s.ID())) == 0 && clk.Now().Sub(touched) < 13*time.Second {
		step(m, clk, 100*time.Millisecond)
	}
	if ends := log.get(s.ID()); len(ends) != 1 || ends[0].at.Sub(touched) > 10*time.Second+2*tick {
		t.Fatalf("endings %v, touched at %v: want one within 2 ticks of the idle timeout", ends, touched)
	}
}

// After a frozen process (a suspended VM) the sessions due end at once
// rather than living another timeout.
func TestFrozenProcessEndsDueSessions(t *testing.T) {
	m, clk, log := newManager(t, sessions.Config{})
	s := mustCreate(t, m)
	clk.Jump(time.Hour)
	m.Sweep()
	if ends := log.get(s.ID()); len(ends) != 1 || ends[0].reason != sessions.Idle {
		t.Fatalf("endings %v after an hour's freeze, want one Idle", ends)
	}
}
