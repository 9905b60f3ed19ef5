package sessions_test

// Regression tests for the failures an independent acceptance suite found
// (issue 8), one per failure, each written against the public API only.

import (
	"context"
	"errors"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionwheel/sessionwheel/sessions"
	"github.com/sessionwheel/sessionwheel/sessions/sessionstest"
)

// 1. Renew in a one-shard table whose index grows while the new ID is
// indexed must not lose another session.
func TestRenewKeepsBystanders(t *testing.T) {
	for _, n := range []int{13, 17, 21, 26, 32, 76, 95, 185} {
		m, _, _ := newManager(t, sessions.Config{Shards: 1})
		ids := make([]sessions.ID, n)
		for i := range ids {
			ids[i] = mustCreate(t, m).ID()
		}
		r, err := m.Renew(ids[0])
		if err != nil {
			t.Fatal(err)
		}
		ids[0] = r.ID()
		for i, id := range ids {
			if _, ok := m.Peek(id); !ok {
				t.Fatalf("%d sessions: session %d lost after Renew", n, i)
			}
		}
		for i, id := range ids {
			if !m.Expire(id) {
				t.Fatalf("%d sessions: Expire of session %d found nothing", n, i)
			}
		}
		if m.Len() != 0 {
			t.Fatalf("%d sessions: Len %d after expiring all", n, m.Len())
		}
	}
}

// stallClock wraps the fake clock: once armed, the next Now called from
// inside a timer's function returns its time and then blocks until
// released, as a timer goroutine preempted right after reading the clock.
type stallClock struct {
	*sessionstest.Clock
	inTimer atomic.Bool
	armed   atomic.Bool
	stalled chan struct{}
	release chan struct{}
}

func (c *stallClock) Now() time.Time {
	now := c.Clock.Now()
	if c.inTimer.Load() && c.armed.CompareAndSwap(true, false) {
		close(c.stalled)
		<-c.release
	}
	return now
}

func (c *stallClock) AfterFunc(d time.Duration, f func()) sessions.Timer {
	return c.Clock.AfterFunc(d, func() {
		c.inTimer.Store(true)
		defer c.inTimer.Store(false)
		f()
	})
}

// 3. A touch made while the manager's timer goroutine is stalled counts
// from the time it happened: the session lives its whole idle timeout
// after it.
func TestStalledTimerNeverEndsEarly(t *testing.T) {
	clk := &stallClock{Clock: sessionstest.NewClock(time.Time{}), stalled: make(chan struct{}), release: make(chan struct{})}
	var ended atomic.Int64 // fake time of the ending, ns since start
	start := clk.Clock.Now()
	m, err := sessions.New(sessions.Config{Tick: 10 * time.Millisecond, IdleTimeout: 100 * time.Millisecond, Clock: clk,
		OnExpire: func(sessions.Session, sessions.Reason) { ended.Store(int64(clk.Clock.Now().Sub(start))) }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	s := mustCreate(t, m)
	clk.Advance(5 * time.Millisecond)
	clk.armed.Store(true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		clk.Advance(15 * time.Millisecond) // the timer due at 10 ms reads the clock and stalls
	}()
	stalled := false
	select {
	case <-clk.stalled:
		stalled = true
	case <-done: // this manager's timers never read the clock: nothing to stall
		clk.armed.Store(false)
	}
	clk.Clock.Skip(30 * time.Millisecond) // time goes on while the timer goroutine is stalled
	touched := clk.Clock.Now().Sub(start)
	if err := s.Touch(); err != nil {
		t.Fatal(err)
	}
	if stalled {
		close(clk.release)
	}
	<-done
	for clk.Clock.Now().Sub(start) < touched+150*time.Millisecond {
		clk.Advance(time.Millisecond)
		m.Sweep()
		if e := ended.Load(); e != 0 && time.Duration(e) < touched+100*time.Millisecond {
			t.Fatalf("touched at %v, ended at %v: before the 100 ms idle timeout", touched, time.Duration(e))
		}
	}
	if ended.Load() == 0 {
		t.Fatal("never ended")
	}
}

// 4. A session's own timeout longer than anything the manager planned for,
// after one late timer, still ends on time, and once a lookup has called
// it gone it is never found again.
func TestLongOwnTimeoutEndsOnTime(t *testing.T) {
	m, clk, log := newManager(t, sessions.Config{Tick: 10 * time.Millisecond, IdleTimeout: 100 * time.Millisecond})
	s := mustCreate(t, m)
	if err := s.SetIdleTimeout(20 * time.Minute); err != nil { // 120,000 ticks
		t.Fatal(err)
	}
	created := clk.Now()
	clk.Skip(900 * time.Millisecond) // one timer runs 0.9 s late
	clk.Advance(0)
	clk.Jump(20*time.Minute - 900*time.Millisecond + 30*time.Millisecond) // the deadline, plus 3 ticks
	if _, ok := m.Peek(s.ID()); ok {
		t.Fatalf("found %v after creation, with a 20 min idle timeout", clk.Now().Sub(created))
	}
	clk.Advance(500 * time.Millisecond)
	if _, ok := m.Get(s.ID()); ok {
		t.Fatal("a session reported gone was found again")
	}
	m.Sweep()
	if ends := log.get(s.ID()); len(ends) != 1 || ends[0].reason != sessions.Idle {
		t.Fatalf("endings %v, want one Idle", ends)
	}
}

// 5. Lookups, Deadline, Sweep and Close agree on when a session ends, also
// with an idle timeout that is not a whole number of ticks: a session is
// alive exactly before its Deadline, and one that a lookup calls gone is
// ended by the next Sweep, as Idle.
func TestOneDefinitionOfEnded(t *testing.T) {
	m, clk, log := newManager(t, sessions.Config{Tick: 100 * time.Millisecond, IdleTimeout: 2050 * time.Millisecond})
	clk.Advance(30 * time.Millisecond)
	s := mustCreate(t, m)
	dl := s.Deadline()
	if dl.Before(clk.Now().Add(2050 * time.Millisecond)) {
		t.Fatalf("Deadline %v is before creation + idle timeout", dl.Sub(clk.Now()))
	}
	for range 3000 {
		clk.Advance(time.Millisecond)
		_, ok := m.Peek(s.ID())
		if want := clk.Now().Before(dl); ok != want {
			t.Fatalf("at deadline%+v: Peek = %v", clk.Now().Sub(dl), ok)
		}
		if !ok {
			m.Sweep()
			if ends := log.get(s.ID()); len(ends) != 1 || ends[0].reason != sessions.Idle {
				t.Fatalf("at deadline%+v: gone to a lookup, endings after Sweep %v", clk.Now().Sub(dl), ends)
			}
			return
		}
	}
	t.Fatal("never ended")
}

// 6. Close ends a session already past its deadline (and reported gone) as
// Idle, not Shutdown.
func TestCloseOverdueIsIdle(t *testing.T) {
	clk := sessionstest.NewClock(time.Time{})
	var mu sync.Mutex
	reasons := map[sessions.ID]sessions.Reason{}
	m, err := sessions.New(sessions.Config{IdleTimeout: 10 * time.Second, Clock: clk, OnExpire: func(s sessions.Session, r sessions.Reason) {
		mu.Lock()
		reasons[s.ID()] = r
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	overdue, fresh := mustCreate(t, m), sessions.Session{}
	clk.Skip(11 * time.Second) // no timer runs: the driver has not ended it
	fresh = mustCreate(t, m)
	if _, ok := m.Peek(overdue.ID()); ok {
		t.Fatal("overdue session found")
	}
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := reasons[overdue.ID()]; r != sessions.Idle {
		t.Fatalf("overdue session ended %v, want idle", r)
	}
	if r := reasons[fresh.ID()]; r != sessions.Shutdown {
		t.Fatalf("live session ended %v, want shutdown", r)
	}
	if st := m.Stats(); st.Ended[sessions.Idle] != 1 || st.Ended[sessions.Shutdown] != 1 {
		t.Fatalf("ended %v", st.Ended)
	}
}

// 7. Close keeps to its context while the driver waits for room in a full
// callback queue.
func TestCloseContextWithFullQueue(t *testing.T) {
	release := make(chan struct{})
	var ran atomic.Int32
	m, clk, _ := newManager(t, sessions.Config{Workers: 1, QueueLen: 1, OnExpire: func(sessions.Session, sessions.Reason) {
		ran.Add(1)
		<-release
	}})
	for range 2000 {
		mustCreate(t, m)
	}
	clk.Advance(11 * time.Second) // the driver ends them; one callback blocks, the queue fills
	for m.Stats().CallbackQueue == 0 {
		runtime.Gosched()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- m.Close(ctx) }()
	select {
	case err := <-errc:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close = %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second): // a bound on a hang, not a timing assertion
		close(release)
		t.Fatal("Close ignored its context")
	}
	close(release) // the worker drains the rest; goleak checks it exits
	for m.Stats().CallbackQueue > 0 {
		runtime.Gosched()
	}
	if ran.Load() != 2000 {
		t.Fatalf("%d of 2000 callbacks ran", ran.Load())
	}
}

// 8. A callback that calls runtime.Goexit (what t.FailNow does) neither
// kills the pool nor stops the rest of its batch.
func TestCallbackGoexit(t *testing.T) {
	var ran atomic.Int32
	var first atomic.Bool
	m, clk, _ := newManager(t, sessions.Config{Workers: 1, OnExpire: func(sessions.Session, sessions.Reason) {
		if first.CompareAndSwap(false, true) {
			runtime.Goexit()
		}
		ran.Add(1)
	}})
	for range 10 {
		mustCreate(t, m)
	}
	clk.Advance(11 * time.Second)
	done := make(chan struct{})
	go func() { m.Sweep(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second): // a bound on a hang
		t.Fatal("Sweep hangs after a callback called Goexit")
	}
	if ran.Load() != 9 {
		t.Fatalf("%d of the 9 other callbacks ran", ran.Load())
	}
	s := mustCreate(t, m)
	s.Expire()
	m.Sweep()
	if ran.Load() != 10 {
		t.Fatal("no callback runs after a Goexit")
	}
	if m.Stats().CallbackPanics != 1 {
		t.Fatalf("CallbackPanics = %d, want the Goexit counted", m.Stats().CallbackPanics)
	}
}

// 9 and 10. Concurrent Creates never push Len past MaxSessions, and with
// Evict none of them fails.
func TestMaxSessionsConcurrent(t *testing.T) {
	for _, evict := range []bool{false, true} {
		m, _, _ := newManager(t, sessions.Config{MaxSessions: 8, Evict: evict})
		var failed, over atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 2000 {
					if _, err := m.Create(); err != nil {
						if !errors.Is(err, sessions.ErrTooManySessions) {
							t.Error(err)
						}
						failed.Add(1)
					}
					if m.Len() > 8 || m.Stats().Active > 8 {
						over.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if over.Load() != 0 {
			t.Errorf("evict=%v: Len or Active above MaxSessions %d times", evict, over.Load())
		}
		if evict && failed.Load() != 0 {
			t.Errorf("evict=true: %d of 16000 Creates failed", failed.Load())
		}
	}
}

// 11. Eviction takes the session that would end soonest, not a touched one
// while idle ones remain.
func TestEvictSoonest(t *testing.T) {
	for _, shards := range []int{1, 64} {
		m, clk, log := newManager(t, sessions.Config{MaxSessions: 20, Evict: true, Shards: shards, IdleTimeout: 10 * time.Minute})
		var ss []sessions.Session
		for range 20 {
			ss = append(ss, mustCreate(t, m))
			clk.Advance(time.Second)
		}
		step(m, clk, time.Minute)
		for _, s := range ss[:10] {
			if err := s.Touch(); err != nil {
				t.Fatal(err)
			}
		}
		for k := range 10 {
			mustCreate(t, m)
			m.Sweep()
			if ends := log.get(ss[10+k].ID()); len(ends) != 1 || ends[0].reason != sessions.Evicted {
				for i, s := range ss {
					if len(log.get(s.ID())) > 0 {
						t.Fatalf("shards %d, eviction %d: evicted session %d (touched: %v), want %d", shards, k, i, i < 10, 10+k)
					}
				}
				t.Fatalf("shards %d, eviction %d: session %d not evicted", shards, k, 10+k)
			}
		}
	}
}

// 12. CreatedAt, LastAccess never lie in the future.
func TestTimesNotInFuture(t *testing.T) {
	m, clk, _ := newManager(t, sessions.Config{Tick: 100 * time.Millisecond})
	for range 50 {
		clk.Advance(7 * time.Millisecond)
		s := mustCreate(t, m)
		now := clk.Now()
		if s.CreatedAt().After(now) || s.LastAccess().After(now) {
			t.Fatalf("at %v: CreatedAt %v, LastAccess %v", now, s.CreatedAt(), s.LastAccess())
		}
	}
}

// Huge timeouts are refused, not overflowed.
func TestHugeTimeouts(t *testing.T) {
	for name, cfg := range map[string]sessions.Config{
		"idle":     {IdleTimeout: math.MaxInt64, Tick: time.Hour},
		"absolute": {AbsoluteTimeout: math.MaxInt64},
	} {
		if m, err := sessions.New(cfg); !errors.Is(err, sessions.ErrInvalidConfig) {
			if m != nil {
				m.Close(context.Background())
			}
			t.Errorf("%s: New = %v, want ErrInvalidConfig", name, err)
		}
	}
	m, _, _ := newManager(t, sessions.Config{Tick: time.Hour, IdleTimeout: time.Hour})
	s := mustCreate(t, m)
	for _, d := range []time.Duration{math.MaxInt64, math.MaxInt64 - time.Hour} {
		if err := s.SetIdleTimeout(d); !errors.Is(err, sessions.ErrInvalidTimeout) {
			t.Errorf("SetIdleTimeout(%v) = %v, want ErrInvalidTimeout", d, err)
		}
	}
	if !s.Alive() || !slices.Contains([]time.Duration{time.Hour}, s.IdleTimeout()) {
		t.Fatalf("session after refused timeouts: alive %v, idle %v", s.Alive(), s.IdleTimeout())
	}
}
