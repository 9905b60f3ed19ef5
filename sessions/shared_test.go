package sessions_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionwheel/sessionwheel/sessions"
	"github.com/sessionwheel/sessionwheel/sessions/sessionstest"
)

// The manager on a shared store, tested with sessionstest.Store (the fake
// shared store) on the fake clock: two managers stand for two processes.
// redisstore's tests run the same promises against a real redis-server.

// newShared returns a manager on a shared store whose driver never runs by
// itself: endings are claimed by the test's Sweep calls only, so that the
// test says which manager claims what.
func newShared(t *testing.T, cfg sessions.Config) *sessions.Manager {
	t.Helper()
	m, err := sessions.NewForTest(cfg, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// sharedPair returns two managers sharing one fake store, each recording its
// endings in its own log, and closes them at the end of the test.
func sharedPair(t *testing.T, clk *sessionstest.Clock, lease time.Duration) (*sessionstest.Store, [2]*sessions.Manager, [2]*endLog) {
	t.Helper()
	st := sessionstest.NewStore(clk, lease)
	var ms [2]*sessions.Manager
	var logs [2]*endLog
	for i := range ms {
		logs[i] = &endLog{clk: clk, ends: map[sessions.ID][]endEvent{}}
		m := newShared(t, sessions.Config{IdleTimeout: time.Minute, Tick: tick, Clock: clk, Store: st, OnExpire: logs[i].record})
		t.Cleanup(func() { m.Close(context.Background()) })
		ms[i] = m
	}
	return st, ms, logs
}

func TestSharedSessionServedByEitherManager(t *testing.T) {
	clk := sessionstest.NewClock(time.Time{})
	_, ms, logs := sharedPair(t, clk, 0)
	s, err := ms[0].Create()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set("n", 7); err != nil {
		t.Fatal(err)
	}
	// The other process finds it, with its value (an int, through gob).
	s2, err := ms[1].Lookup(s.ID())
	if err != nil {
		t.Fatalf("second manager: Lookup = %v", err)
	}
	if v, err := s2.Get("n"); err != nil || v != 7 {
		t.Fatalf(`Get("n") through the second manager = %v, %v; want 7`, v, err)
	}
	// A touch through the second keeps it alive for the first.
	clk.Advance(50 * time.Second)
	if !ms[1].Touch(s.ID()) {
		t.Fatal("Touch through the second manager: not alive")
	}
	clk.Advance(50 * time.Second) // 100 s after creation, 50 s after the touch
	ms[0].Sweep()
	ms[1].Sweep()
	if !s.Alive() {
		t.Fatal("a session touched through the other manager ended")
	}
	// A logout through the second is seen by the first at once.
	if err := s2.Expire(); err != nil {
		t.Fatal(err)
	}
	if _, ok := ms[0].Peek(s.ID()); ok {
		t.Fatal("the first manager still finds a session the second logged out")
	}
	if err := s.Set("n", 8); !errors.Is(err, sessions.ErrEnded) {
		t.Fatalf("Set after logout = %v, want ErrEnded", err)
	}
	ms[0].Sweep()
	ms[1].Sweep()
	got := append(logs[0].get(s.ID()), logs[1].get(s.ID())...)
	if len(got) != 1 || got[0].reason != sessions.Explicit {
		t.Fatalf("endings of the logged-out session: %v, want one Explicit", got)
	}
	if n := logs[0].count(); n != 0 {
		t.Fatalf("the first manager ran %d callbacks for a session the second ended", n)
	}
}

func TestSharedIdleEndingsRunOnce(t *testing.T) {
	clk := sessionstest.NewClock(time.Time{})
	_, ms, logs := sharedPair(t, clk, 0)
	const n = 300
	ids := make([]sessions.ID, n)
	for i := range ids {
		s, err := ms[i%2].Create()
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = s.ID()
		if err := s.Set("k", i); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Minute - time.Millisecond)
	if e := ms[0].Sweep() + ms[1].Sweep(); e != 0 {
		t.Fatalf("%d sessions ended before their idle timeout", e)
	}
	clk.Advance(time.Millisecond)
	var wg sync.WaitGroup
	var ended atomic.Int64
	for _, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ended.Add(int64(m.Sweep()))
		}()
	}
	wg.Wait()
	if ended.Load() != n {
		t.Fatalf("the two managers ended %d sessions, want %d", ended.Load(), n)
	}
	for _, id := range ids {
		got := append(logs[0].get(id), logs[1].get(id)...)
		if len(got) != 1 || got[0].reason != sessions.Idle {
			t.Fatalf("session %v: endings %v, want one Idle", id, got)
		}
	}
	if ms[0].Len() != 0 {
		t.Fatalf("Len = %d after every session ended", ms[0].Len())
	}
}

func TestSharedValuesReadableInCallback(t *testing.T) {
	clk := sessionstest.NewClock(time.Time{})
	st := sessionstest.NewStore(clk, 0)
	got := make(chan any, 1)
	m := newShared(t, sessions.Config{IdleTimeout: time.Minute, Clock: clk, Store: st,
		OnExpire: func(s sessions.Session, _ sessions.Reason) {
			v, err := s.Get("user")
			if err != nil {
				v = err
			}
			got <- v
		}})
	defer m.Close(context.Background())
	s, _ := m.Create()
	if err := s.Set("user", "ada"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	m.Sweep()
	if v := <-got; v != "ada" {
		t.Fatalf(`Get("user") in OnExpire = %v, want "ada"`, v)
	}
	if _, err := st.Value(context.Background(), s.ID(), "user"); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("after the ack, the store still has the session's value (err %v)", err)
	}
}

func TestSharedStalledClaimIsRedelivered(t *testing.T) {
	clk := sessionstest.NewClock(time.Time{})
	st := sessionstest.NewStore(clk, 30*time.Second)
	release := make(chan struct{})
	claimed := make(chan struct{}, 1)
	var second atomic.Int64
	var redelivered atomic.Bool
	stalled := newShared(t, sessions.Config{IdleTimeout: time.Minute, Clock: clk, Store: st,
		OnExpire: func(sessions.Session, sessions.Reason) { claimed <- struct{}{}; <-release }})
	other := newShared(t, sessions.Config{IdleTimeout: time.Minute, Clock: clk, Store: st,
		OnExpire: func(s sessions.Session, _ sessions.Reason) {
			if v, err := s.Get("k"); err == nil && v == "v" {
				redelivered.Store(true)
			}
			second.Add(1)
		}})
	defer other.Close(context.Background())
	s, _ := stalled.Create()
	s.Set("k", "v")
	clk.Advance(time.Minute)
	done := make(chan int)
	go func() { done <- stalled.Sweep() }() // claims, then stalls in the callback
	<-claimed
	if n := other.Sweep(); n != 0 {
		t.Fatalf("another manager claimed %d endings while the lease lasted", n)
	}
	clk.Advance(30 * time.Second) // the stalled claim's lease runs out
	if n := other.Sweep(); n != 1 || second.Load() != 1 || !redelivered.Load() {
		t.Fatalf("after the lease: claimed %d, callbacks %d, values read %v; want 1, 1, true", n, second.Load(), redelivered.Load())
	}
	close(release)
	<-done
	if lost := st.Stats().LeasesLost; lost != 1 {
		t.Fatalf("the stalled manager's late ack: LeasesLost = %d, want 1 (refused)", lost)
	}
	if st := stalled.Stats().Store; st.Redelivered != 1 {
		t.Fatalf("Stats.Store.Redelivered = %d, want 1", st.Redelivered)
	}
	stalled.Close(context.Background())
}

func TestSharedUnavailable(t *testing.T) {
	clk := sessionstest.NewClock(time.Time{})
	st, ms, logs := sharedPair(t, clk, 0)
	m := ms[0]
	s, _ := m.Create()
	st.SetUnavailable(true)
	if _, err := m.Lookup(s.ID()); !errors.Is(err, sessions.ErrUnavailable) {
		t.Fatalf("Lookup with the store down = %v, want ErrUnavailable", err)
	}
	if _, err := m.LookupString(s.ID().String()); !errors.Is(err, sessions.ErrUnavailable) {
		t.Fatalf("LookupString with the store down = %v, want ErrUnavailable", err)
	}
	if _, err := m.LookupString("not an id"); !errors.Is(err, sessions.ErrMalformedID) {
		t.Fatalf("LookupString of garbage = %v, want ErrMalformedID", err)
	}
	if _, err := m.Create(); !errors.Is(err, sessions.ErrUnavailable) {
		t.Fatalf("Create with the store down = %v, want ErrUnavailable", err)
	}
	if _, err := m.Renew(s.ID()); !errors.Is(err, sessions.ErrUnavailable) {
		t.Fatalf("Renew with the store down = %v, want ErrUnavailable", err)
	}
	if err := s.Set("k", 1); !errors.Is(err, sessions.ErrUnavailable) {
		t.Fatalf("Set with the store down = %v, want ErrUnavailable", err)
	}
	if err := s.Expire(); !errors.Is(err, sessions.ErrUnavailable) {
		t.Fatalf("Expire with the store down = %v, want ErrUnavailable", err)
	}
	// The deadline passes during the outage: nothing ends, nothing is lost.
	clk.Advance(2 * time.Minute)
	if n := m.Sweep(); n != 0 {
		t.Fatalf("Sweep with the store down ended %d", n)
	}
	st.SetUnavailable(false)
	clk.Advance(2 * time.Second) // past the claimer's back-off
	if n := m.Sweep() + ms[1].Sweep(); n != 1 {
		t.Fatalf("after the outage the managers ended %d sessions, want 1", n)
	}
	if got := append(logs[0].get(s.ID()), logs[1].get(s.ID())...); len(got) != 1 || got[0].reason != sessions.Idle {
		t.Fatalf("endings: %v, want one Idle", got)
	}
}

func TestSharedNotFoundAndUnsupported(t *testing.T) {
	clk := sessionstest.NewClock(time.Time{})
	_, ms, _ := sharedPair(t, clk, 0)
	m := ms[0]
	if _, err := m.Lookup(sessions.ID{1}); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("Lookup of an unknown ID = %v, want ErrNotFound", err)
	}
	s, _ := m.Create()
	if err := s.NotifyOnExpire(func(sessions.Session, sessions.Reason) {}); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("NotifyOnExpire on a shared store = %v, want errors.ErrUnsupported", err)
	}
	if err := m.Snapshot(&bytes.Buffer{}); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("Snapshot on a shared store = %v, want errors.ErrUnsupported", err)
	}
}

func TestSharedRenewAndOwners(t *testing.T) {
	clk := sessionstest.NewClock(time.Time{})
	_, ms, logs := sharedPair(t, clk, 0)
	s, _ := ms[0].Create()
	s.Set("cart", []string{"tea"})
	if err := s.SetOwner("ada"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetIdleTimeout(5 * time.Minute); err != nil {
		t.Fatal(err)
	}
	created := s.CreatedAt()
	n, err := ms[1].Renew(s.ID())
	if err != nil {
		t.Fatal(err)
	}
	if n.ID() == s.ID() {
		t.Fatal("Renew kept the ID")
	}
	if _, ok := ms[0].Peek(s.ID()); ok {
		t.Fatal("the old ID still works after Renew")
	}
	if v, err := n.Get("cart"); err != nil || len(v.([]string)) != 1 {
		t.Fatalf("value after Renew: %v, %v", v, err)
	}
	if n.Owner() != "ada" || n.IdleTimeout() != 5*time.Minute || !n.CreatedAt().Equal(created) || created.IsZero() {
		t.Fatalf("after Renew: owner %q, idle %v, created %v (was %v)", n.Owner(), n.IdleTimeout(), n.CreatedAt(), created)
	}
	t2, _ := ms[1].Create()
	t2.SetOwner("ada")
	if got := ms[0].Owned("ada"); len(got) != 2 {
		t.Fatalf("Owned(ada) = %d sessions, want 2", len(got))
	}
	if k := ms[0].ExpireOwner("ada"); k != 2 {
		t.Fatalf("ExpireOwner = %d, want 2", k)
	}
	ms[0].Sweep()
	if c := logs[0].count() + logs[1].count(); c != 2 {
		t.Fatalf("%d callbacks after ExpireOwner, want 2", c)
	}
	if ms[1].Len() != 0 {
		t.Fatalf("Len = %d after ExpireOwner", ms[1].Len())
	}
}

func TestSharedCloseLeavesSessions(t *testing.T) {
	clk := sessionstest.NewClock(time.Time{})
	st := sessionstest.NewStore(clk, 0)
	var ends atomic.Int64
	m := newShared(t, sessions.Config{Clock: clk, Store: st, OnExpire: func(sessions.Session, sessions.Reason) { ends.Add(1) }})
	s, _ := m.Create()
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ends.Load() != 0 {
		t.Fatal("Close on a shared store ended sessions")
	}
	m2 := newShared(t, sessions.Config{Clock: clk, Store: st})
	defer m2.Close(context.Background())
	if _, err := m2.Lookup(s.ID()); err != nil {
		t.Fatalf("after the first manager closed, the session is gone: %v", err)
	}
}

func TestSharedConfigRefused(t *testing.T) {
	st := sessionstest.NewStore(nil, 0)
	for name, cfg := range map[string]sessions.Config{
		"MaxSessions":    {Store: st, MaxSessions: 10},
		"Evict":          {Store: st, Evict: true},
		"MaxPerOwner":    {Store: st, MaxPerOwner: 2},
		"DiscardOnClose": {Store: st, DiscardOnClose: true},
		"Restore":        {Store: st, Restore: &bytes.Buffer{}},
	} {
		if m, err := sessions.New(cfg); !errors.Is(err, sessions.ErrInvalidConfig) {
			if m != nil {
				m.Close(context.Background())
			}
			t.Errorf("%s with a shared store: New = %v, want ErrInvalidConfig", name, err)
		}
	}
}

func TestSharedDriverClaimsByItself(t *testing.T) {
	clk := sessionstest.NewClock(time.Time{})
	st := sessionstest.NewStore(clk, 0)
	ended := make(chan sessions.Reason, 1)
	m, err := sessions.New(sessions.Config{IdleTimeout: time.Minute, Clock: clk, Store: st,
		OnExpire: func(_ sessions.Session, r sessions.Reason) { ended <- r }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	if _, err := m.Create(); err != nil {
		t.Fatal(err)
	}
	// The driver asks the store at least once a tick; the ending comes due
	// a minute on. Advance in ticks, as time passes.
	deadline := time.After(10 * time.Second)
	for i := 0; ; i++ {
		select {
		case r := <-ended:
			if r != sessions.Idle {
				t.Fatalf("reason %v, want Idle", r)
			}
			if now := clk.Now(); now.Before(time.Time{}.Add(time.Minute)) {
				t.Fatalf("ended at %v, before its idle timeout", now)
			}
			return
		case <-deadline:
			t.Fatalf("the driver did not claim the ending (fake time %v)", clk.Now())
		default:
		}
		if i < 120 {
			clk.Advance(time.Second)
		}
		runtime.Gosched()
	}
}
