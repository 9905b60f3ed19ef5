package sessions_test

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/sessionwheel/sessionwheel/sessions"
	"github.com/sessionwheel/sessionwheel/sessions/sessionstest"
)

// TestConcurrentNeverEarly: goroutines touch, renew, expire and look at
// sessions while the clock moves and the driver runs. Each records the
// clock's time before each touch that returned true; every idle ending
// must come at least the idle timeout after the latest of them, and no
// lookup may call a session gone before then.
func TestConcurrentNeverEarly(t *testing.T) {
	steps := 300
	if *long {
		steps = 5000
	}
	for _, shards := range []int{1, 4} {
		checkNeverEarly(t, shards, steps)
	}
}

func checkNeverEarly(t *testing.T, shards, steps int) {
	const (
		idle  = 50 * time.Millisecond
		tick  = 10 * time.Millisecond
		users = 48
	)
	clk := sessionstest.NewClock(time.Time{})
	type ending struct {
		at     time.Time
		reason sessions.Reason
	}
	var mu sync.Mutex
	ends := map[sessions.ID][]ending{}
	m, err := sessions.New(sessions.Config{Tick: tick, IdleTimeout: idle, Shards: shards, Clock: clk,
		OnExpire: func(s sessions.Session, r sessions.Reason) {
			mu.Lock()
			ends[s.ID()] = append(ends[s.ID()], ending{clk.Now(), r})
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}

	// Each user holds one session at a time; lastTouch is the latest time
	// read before a touch of that ID that returned true (creation counts).
	type user struct {
		mu sync.Mutex
		id sessions.ID
	}
	var us [users]user
	var tmu sync.Mutex
	lastTouch := map[sessions.ID]time.Time{}
	gone := map[sessions.ID]time.Time{} // a miss, and the time read after it
	touched := func(id sessions.ID, at time.Time) {
		tmu.Lock()
		if at.After(lastTouch[id]) {
			lastTouch[id] = at
		}
		tmu.Unlock()
	}
	create := func(u *user) {
		at := clk.Now()
		s, err := m.Create()
		if err != nil {
			t.Error(err)
			return
		}
		u.id = s.ID()
		touched(u.id, at)
	}
	for i := range us {
		create(&us[i])
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), uint64(shards)))
			for {
				select {
				case <-stop:
					return
				default:
				}
				u := &us[r.IntN(users)]
				u.mu.Lock()
				at := clk.Now()
				switch op := r.IntN(100); {
				case op < 70:
					if _, ok := m.Get(u.id); ok {
						touched(u.id, at)
					} else {
						tmu.Lock()
						if _, seen := gone[u.id]; !seen {
							gone[u.id] = clk.Now()
						}
						tmu.Unlock()
						create(u) // the user logs in again
					}
				case op < 80:
					if s, err := m.Renew(u.id); err == nil {
						u.id = s.ID()
						touched(u.id, at)
					}
				case op < 83:
					m.Expire(u.id)
					create(u)
				default:
					// Idle users: let some sessions end by themselves.
				}
				u.mu.Unlock()
			}
		})
	}
	for range steps {
		clk.Advance(time.Millisecond) // timers run: the driver ends what is due
		m.Sweep()                     // and the callbacks run before time moves on
	}
	close(stop)
	wg.Wait()
	m.Sweep()
	if err := m.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	var idleEnds int
	for id, es := range ends {
		if len(es) != 1 {
			t.Fatalf("session %v ended %d times", id, len(es))
		}
		e := es[0]
		if e.reason != sessions.Idle {
			continue
		}
		idleEnds++
		if last := lastTouch[id]; e.at.Before(last.Add(idle)) {
			t.Errorf("shards %d: session ended %v after its last touch, before the %v idle timeout", shards, e.at.Sub(last), idle)
		}
	}
	for id, at := range gone {
		if last, ok := lastTouch[id]; ok && at.Before(last.Add(idle)) {
			t.Errorf("shards %d: a lookup called a session gone %v after its last touch", shards, at.Sub(last))
		}
	}
	if idleEnds == 0 {
		t.Errorf("shards %d: no session ended idle: the test checked nothing", shards)
	}
	t.Logf("shards %d: %d endings, %d idle", shards, len(ends), idleEnds)
}
