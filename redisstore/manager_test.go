package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionwheel/sessionwheel/redisstore/redistest"
	"github.com/sessionwheel/sessionwheel/sessions"
)

// process is one application process of a test: a manager on its own
// client and store, on the shared Redis.
type process struct {
	m  *sessions.Manager
	st *Store
}

func newProcess(t *testing.T, r *redistest.Redis, cfg sessions.Config) process {
	t.Helper()
	return newProcessOn(t, cfg, r.Addr)
}

func newProcessOn(t *testing.T, cfg sessions.Config, addrs ...string) process {
	t.Helper()
	// sessions.New opens the store with the manager's settings.
	st, err := New(client(t, addrs...), Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store = st
	m, err := sessions.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Close(ctx); err != nil && !errors.Is(err, sessions.ErrClosed) {
			t.Error(err)
		}
	})
	return process{m, st}
}

// A session created by one process is found, changed, touched, renewed and
// logged out through another.
func TestManagersShareSessions(t *testing.T) {
	r := redistest.Server(t)
	var ends sync.Map // ID -> Reason
	cfg := sessions.Config{
		IdleTimeout: time.Minute, Tick: 10 * time.Millisecond,
		OnExpire: func(s sessions.Session, why sessions.Reason) { ends.Store(s.ID(), why) },
	}
	a, b := newProcess(t, r, cfg), newProcess(t, r, cfg)

	s, err := a.m.Create()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set("user", "ada"); err != nil {
		t.Fatal(err)
	}
	if err := s.Set("visits", 3); err != nil {
		t.Fatal(err)
	}
	sb, ok := b.m.Get(s.ID())
	if !ok {
		t.Fatal("b does not find a's session")
	}
	if v, err := sb.Get("user"); err != nil || v != "ada" {
		t.Fatalf("b reads user = %v, %v", v, err)
	}
	if v, err := sb.Get("visits"); err != nil || v != 3 {
		t.Fatalf("b reads visits = %#v, %v (gob keeps int)", v, err)
	}
	if err := sb.Set("user", "eve"); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get("user"); err != nil || v != "eve" {
		t.Fatalf("a reads b's change: %v, %v", v, err)
	}
	// Renewed through b: a's handle to the old ID stops working.
	ns, err := b.m.Renew(s.ID())
	if err != nil {
		t.Fatal(err)
	}
	if ns.ID() == s.ID() {
		t.Fatal("Renew kept the ID")
	}
	if _, ok := a.m.Get(s.ID()); ok {
		t.Fatal("old ID still works after Renew")
	}
	if err := s.Set("k", "v"); !errors.Is(err, sessions.ErrEnded) {
		t.Fatalf("old handle after Renew: %v, want ErrEnded", err)
	}
	na, ok := a.m.Get(ns.ID())
	if !ok {
		t.Fatal("a does not find the renewed session")
	}
	if v, _ := na.Get("user"); v != "eve" {
		t.Fatalf("renewed session lost its values: %v", v)
	}
	// Logged out through a: b no longer finds it, and the ending's callback
	// runs once, as Explicit.
	if !a.m.Expire(ns.ID()) {
		t.Fatal("Expire found nothing")
	}
	if _, ok := b.m.Get(ns.ID()); ok {
		t.Fatal("b finds a session logged out through a")
	}
	eventually(t, 10*time.Second, "the logout's callback", func() bool {
		_, ok := ends.Load(ns.ID())
		return ok
	})
	if why, _ := ends.Load(ns.ID()); why != sessions.Explicit {
		t.Fatalf("logout ended as %v", why)
	}
}

// Idle endings run OnExpire exactly once across two processes, never
// before their Redis deadline.
func TestOnExpireOnceAcrossManagers(t *testing.T) {
	r := redistest.Server(t)
	const n = 100
	var mu sync.Mutex
	runs := map[sessions.ID]int{}
	deadline := map[sessions.ID]int64{}
	var early []string
	var total atomic.Int64
	cfg := sessions.Config{
		IdleTimeout: 300 * time.Millisecond, Tick: 10 * time.Millisecond,
		OnExpire: func(s sessions.Session, why sessions.Reason) {
			now := redisTime(t, r)
			v, err := s.Get("id")
			mu.Lock()
			if err != nil || v != s.ID().String() {
				early = append(early, fmt.Sprintf("%v: value in the callback %v, %v", s.ID(), v, err))
			}
			runs[s.ID()]++
			if d, ok := deadline[s.ID()]; ok && now < d {
				early = append(early, s.ID().String())
			}
			if why != sessions.Idle {
				early = append(early, s.ID().String()+" ended "+why.String())
			}
			mu.Unlock()
			total.Add(1)
		},
	}
	procs := []process{newProcess(t, r, cfg), newProcess(t, r, cfg)}
	for i := range n {
		p := procs[i%2]
		s, err := p.m.Create()
		if err != nil {
			t.Fatal(err)
		}
		rec, err := p.st.Lookup(bg, s.ID(), false)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Set("id", s.ID().String()); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		deadline[s.ID()] = rec.Deadline.UnixMilli()
		mu.Unlock()
	}
	settled(t, procs, func() bool { return total.Load() >= n })
	mu.Lock()
	defer mu.Unlock()
	if len(runs) != n || total.Load() != n {
		t.Fatalf("%d callbacks for %d sessions, want %d once each", total.Load(), len(runs), n)
	}
	for id, c := range runs {
		if c != 1 {
			t.Errorf("%v: OnExpire ran %d times", id, c)
		}
	}
	if len(early) > 0 {
		t.Errorf("callbacks before the deadline, for the wrong reason or without values: %v", early)
	}
	if n, err := procs[0].st.Len(bg); err != nil || n != 0 {
		t.Errorf("Len = %d, %v after every ending", n, err)
	}
}

// A closure cannot cross processes: NotifyOnExpire fails on a shared store.
func TestNotifyOnExpireShared(t *testing.T) {
	r := redistest.Server(t)
	p := newProcess(t, r, sessions.Config{IdleTimeout: time.Minute, Tick: 10 * time.Millisecond})
	s, err := p.m.Create()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.NotifyOnExpire(func(sessions.Session, sessions.Reason) {}); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("NotifyOnExpire = %v, want an error wrapping errors.ErrUnsupported", err)
	}
}

// With Redis stalled, a manager's lookup reports ErrUnavailable, never
// "no such session"; once Redis is back, the session is there. Closing one
// manager leaves the shared sessions to the others.
func TestManagerRedisStalledAndClose(t *testing.T) {
	r := redistest.Server(t)
	cfg := sessions.Config{IdleTimeout: time.Minute, Tick: 10 * time.Millisecond}
	a, b := newProcess(t, r, cfg), newProcess(t, r, cfg)
	s, err := a.m.Create()
	if err != nil {
		t.Fatal(err)
	}
	r.Stop()
	_, err = b.m.Lookup(s.ID())
	r.Cont()
	if !errors.Is(err, sessions.ErrUnavailable) || errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("lookup with Redis stalled: %v, want ErrUnavailable", err)
	}
	if _, err := b.m.Lookup(s.ID()); err != nil {
		t.Fatalf("lookup after Redis is back: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.m.Lookup(s.ID()); err != nil {
		t.Fatalf("session after its creator closed: %v", err)
	}
}

// Two managers on a six-node cluster: each idle ending's OnExpire runs
// once across both.
func TestManagersOnCluster(t *testing.T) {
	cl := redistest.Cluster(t, 5*time.Second)
	const n = 200
	var mu sync.Mutex
	runs := map[sessions.ID]int{}
	var total atomic.Int64
	cfg := sessions.Config{
		IdleTimeout: 300 * time.Millisecond, Tick: 10 * time.Millisecond,
		OnExpire: func(s sessions.Session, why sessions.Reason) {
			mu.Lock()
			runs[s.ID()]++
			mu.Unlock()
			total.Add(1)
		},
	}
	procs := []process{newProcessOn(t, cfg, cl.Addrs...), newProcessOn(t, cfg, cl.Addrs...)}
	for i := range n {
		s, err := procs[i%2].m.Create()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := procs[(i+1)%2].m.Get(s.ID()); !ok {
			t.Fatalf("session %d not found by the other process", i)
		}
	}
	settled(t, procs, func() bool { return total.Load() >= n })
	mu.Lock()
	defer mu.Unlock()
	if len(runs) != n || total.Load() != n {
		t.Fatalf("%d callbacks for %d sessions, want %d once each", total.Load(), len(runs), n)
	}
}

// settled waits until every callback has run (all), then until each
// process has claimed twice more and found nothing, so that no late
// duplicate can still come: the count of callbacks is then final.
func settled(t *testing.T, procs []process, all func() bool) {
	t.Helper()
	eventually(t, 30*time.Second, "every callback", all)
	empty := make([]uint64, len(procs))
	for i, p := range procs {
		empty[i] = p.st.Stats().EmptyClaims
	}
	eventually(t, 10*time.Second, "two more empty claims in each process", func() bool {
		for i, p := range procs {
			if p.st.Stats().EmptyClaims < empty[i]+2 {
				return false
			}
		}
		return true
	})
}
