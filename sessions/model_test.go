package sessions_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/sessionwheel/sessionwheel/sessions"
)

// modelSession is the reference model's view of one session, in real
// (fake-clock) time, not ticks: the properties are the documented ones.
type modelSession struct {
	created, touched time.Time
	idle             time.Duration
	handle           sessions.Session
}

// deadline is when the model says the session must end at the earliest.
func (s *modelSession) deadline(abs time.Duration) (time.Time, sessions.Reason) {
	dl, why := s.touched.Add(s.idle), sessions.Idle
	if abs > 0 && !s.created.Add(abs).After(dl) {
		return s.created.Add(abs), sessions.Absolute
	}
	return dl, why
}

// reasonOK reports whether the engine's reason for ending s agrees with the
// model: the earlier of the idle and absolute deadlines, or either when they
// are at most a tick apart, since the engine rounds both to the tick (the
// idle one to the end of the tick of the last touch).
func (s *modelSession) reasonOK(abs time.Duration, got sessions.Reason) bool {
	_, want := s.deadline(abs)
	if got == want {
		return true
	}
	idle, absolute := s.touched.Add(s.idle), s.created.Add(abs)
	return abs > 0 && (got == sessions.Idle || got == sessions.Absolute) && absolute.Sub(idle).Abs() <= tick
}

// modelIDs returns a deterministic ID source for a model run: random from
// seed, with some IDs crowded so that the index's clusters form, wrap
// around its end and share tags, which is where its deletion is delicate.
func modelIDs(seed uint64) func() sessions.ID {
	r := rand.New(rand.NewPCG(seed, 13))
	return func() sessions.ID {
		var id sessions.ID
		for i := range id {
			id[i] = byte(r.Uint32())
		}
		switch r.IntN(4) {
		case 0:
			id[7] = 0xff // home near the end of the index: probes wrap
		case 1:
			id[7], id[8] = 0x80, 0x42 // one crowded home, one tag
		}
		return id
	}
}

// 13. Random operations against a reference model (a map of sessions and
// their deadlines): the live sets agree after every step, every ended
// session had exactly one ending with the right reason, none ended before
// its deadline and none more than two ticks after it. The run is
// deterministic (IDs from a drawn seed, endings only through Sweep), so
// rapid replays and shrinks a failure; tiny one-shard tables make the index
// grow during Renew and Expire. make test-long runs many more checks.
func TestModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		abs := rapid.SampledFrom([]time.Duration{0, 7 * time.Second, 40 * time.Second}).Draw(rt, "absolute")
		seed := rapid.Uint64().Draw(rt, "seed")
		cfg := sessions.Config{AbsoluteTimeout: abs, Shards: rapid.SampledFrom([]int{1, 4}).Draw(rt, "shards")}
		m, clk, log := newTestManager(t, cfg, modelIDs(seed), true)
		defer m.Close(t.Context())
		live := map[sessions.ID]*modelSession{}
		dead := map[sessions.ID]*modelSession{} // ended sessions; nil for an expected explicit ending
		var ids []sessions.ID                   // every id ever issued, live or not
		pick := func(rt *rapid.T) sessions.ID {
			if len(ids) == 0 || rapid.IntRange(0, 20).Draw(rt, "unknown") == 0 {
				return sessions.ID{9, 9, 9}
			}
			return ids[rapid.IntRange(0, len(ids)-1).Draw(rt, "i")]
		}
		touch := func(id sessions.ID) {
			if s := live[id]; s != nil {
				s.touched = clk.Now()
			}
		}
		rt.Repeat(map[string]func(*rapid.T){
			"create": func(rt *rapid.T) {
				// Sometimes many at once, so that the tiny tables grow
				// (and their indexes are rebuilt) in the middle of a run.
				for range rapid.SampledFrom([]int{1, 1, 2, 5, 13, 30}).Draw(rt, "n") {
					s, err := m.Create()
					if err != nil {
						rt.Fatal(err)
					}
					live[s.ID()] = &modelSession{created: clk.Now(), touched: clk.Now(), idle: 10 * time.Second, handle: s}
					ids = append(ids, s.ID())
				}
			},
			"get": func(rt *rapid.T) {
				id := pick(rt)
				_, ok := m.Get(id)
				if want := live[id] != nil; ok != want {
					rt.Fatalf("Get: found=%v, model live=%v", ok, want)
				}
				touch(id)
			},
			"peek": func(rt *rapid.T) {
				id := pick(rt)
				if _, ok := m.Peek(id); ok != (live[id] != nil) {
					rt.Fatalf("Peek: found=%v, model live=%v", ok, live[id] != nil)
				}
			},
			"touchHandle": func(rt *rapid.T) {
				id := pick(rt)
				s := live[id]
				if s == nil {
					return
				}
				if err := s.handle.Touch(); err != nil {
					rt.Fatalf("Touch of a live session: %v", err)
				}
				touch(id)
			},
			"expire": func(rt *rapid.T) {
				id := pick(rt)
				if got, want := m.Expire(id), live[id] != nil; got != want {
					rt.Fatalf("Expire = %v, model live=%v", got, want)
				}
				if live[id] != nil {
					dead[id] = nil
					delete(live, id)
				}
			},
			"renew": func(rt *rapid.T) {
				id := pick(rt)
				s, err := m.Renew(id)
				old := live[id]
				if (err == nil) != (old != nil) {
					rt.Fatalf("Renew = %v, model live=%v", err, old != nil)
				}
				if err != nil {
					if !errors.Is(err, sessions.ErrEnded) {
						rt.Fatalf("Renew of a dead session: %v", err)
					}
					return
				}
				delete(live, id)
				old.touched, old.handle = clk.Now(), s
				live[s.ID()] = old
				ids = append(ids, s.ID())
			},
			"setIdle": func(rt *rapid.T) {
				id := pick(rt)
				s := live[id]
				if s == nil {
					return
				}
				d := time.Duration(rapid.IntRange(1, 30).Draw(rt, "idle")) * time.Second
				if err := s.handle.SetIdleTimeout(d); err != nil {
					rt.Fatal(err)
				}
				s.idle = d
			},
			"advance": func(rt *rapid.T) {
				steps := rapid.IntRange(1, 25).Draw(rt, "steps")
				for range steps {
					step(m, clk, 500*time.Millisecond)
					now := clk.Now()
					for id, s := range live {
						dl, _ := s.deadline(abs)
						if !now.Before(dl.Add(2 * tick)) {
							// Two ticks past the deadline: the engine must
							// have ended it by now.
							dead[id] = s
							delete(live, id)
						} else if now.Before(dl) && len(log.get(id)) > 0 {
							rt.Fatalf("session ended at %v, before its deadline %v", now, dl)
						}
					}
				}
			},
			"": func(rt *rapid.T) {
				m.Sweep()
				for id, s := range live {
					if ends := log.get(id); len(ends) > 0 {
						// Ended within the two-tick window the model allows:
						// it must have been due, and for the right reason.
						dl, why := s.deadline(abs)
						if ends[0].at.Before(dl) || !s.reasonOK(abs, ends[0].reason) {
							rt.Fatalf("ending %v at %v; model deadline %v (%v)", ends[0].reason, ends[0].at, dl, why)
						}
						dead[id] = s
						delete(live, id)
					}
				}
				if m.Len() != len(live) {
					rt.Fatalf("Len = %d, model has %d live", m.Len(), len(live))
				}
				for id, s := range live {
					// Peek, not Get: the check must not touch.
					if _, ok := m.Peek(id); !ok && clk.Now().Before(s.touched.Add(s.idle)) {
						rt.Fatalf("live session %v not found", id)
					}
				}
				for id, s := range dead {
					ends := log.get(id)
					ok := len(ends) == 1
					if ok && s == nil {
						ok = ends[0].reason == sessions.Explicit
					} else if ok {
						ok = s.reasonOK(abs, ends[0].reason)
					}
					if !ok {
						rt.Fatalf("session %v: endings %v, want exactly one, explicit if nil: %+v", id, ends, s)
					}
				}
			},
		})
	})
}

func TestModelDeadlineFormula(t *testing.T) {
	// The model's own arithmetic, so that a wrong model cannot pass quietly.
	t0 := time.Unix(0, 0)
	s := modelSession{created: t0, touched: t0.Add(5 * time.Second), idle: 10 * time.Second}
	for _, c := range []struct {
		abs  time.Duration
		want string
	}{{0, "15s idle"}, {12 * time.Second, "12s absolute"}, {20 * time.Second, "15s idle"}} {
		dl, why := s.deadline(c.abs)
		if got := fmt.Sprintf("%v %v", dl.Sub(t0), why); got != c.want {
			t.Errorf("abs %v: %s, want %s", c.abs, got, c.want)
		}
	}
}
