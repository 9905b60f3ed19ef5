package sessions_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/sessionwheel/sessionwheel/sessions"
)

// TestOwnerModel runs random operations, owners among them, against a
// reference model built as TestModel's is, and after every step checks the
// owner index itself (sessions.OwnerIndex, which also checks that the index
// agrees with itself): it never holds an ended session or an owner without
// a session, and always holds every live owned session under its owner.
// Owned must list exactly the model's sessions of an owner, with their
// times; ExpireOwner must end exactly them; MaxPerOwner must evict the one
// the model picks (least recent touch to the tick, then oldest, then least
// ID) or refuse. The run is deterministic (IDs from a drawn seed, a manual
// driver), so rapid shrinks a failure to a short story.
func TestOwnerModel(t *testing.T) {
	owners := []string{"", "alice", "bob", "a\x00\xff", strings.Repeat("x", sessions.MaxOwnerLen), strings.Repeat("x", sessions.MaxOwnerLen+1)}
	rapid.Check(t, func(rt *rapid.T) {
		abs := rapid.SampledFrom([]time.Duration{0, 7 * time.Second}).Draw(rt, "absolute")
		limit := rapid.IntRange(0, 3).Draw(rt, "maxPerOwner")
		refuse := rapid.Bool().Draw(rt, "refuse")
		cfg := sessions.Config{AbsoluteTimeout: abs, MaxPerOwner: limit, RefuseOverMaxPerOwner: refuse,
			Shards: rapid.SampledFrom([]int{1, 4}).Draw(rt, "shards")}
		m, clk, log := newTestManager(t, cfg, modelIDs(rapid.Uint64().Draw(rt, "seed")), true)
		defer m.Close(t.Context())
		start := clk.Now() // the manager's epoch: ticks count from here

		live := map[sessions.ID]*modelSession{}
		owner := map[sessions.ID]string{}            // live sessions' owners; absent: none
		dead := map[sessions.ID]sessions.Reason{}    // ended sessions: the reason required, or 0: the model's deadline decides
		deadModel := map[sessions.ID]*modelSession{} // for those with reason 0
		handles := map[sessions.ID]sessions.Session{}
		var ids []sessions.ID
		pick := func(rt *rapid.T) sessions.ID {
			if len(ids) == 0 {
				return sessions.ID{}
			}
			return ids[rapid.IntRange(0, len(ids)-1).Draw(rt, "i")]
		}
		end := func(id sessions.ID, why sessions.Reason) {
			dead[id] = why
			if why == 0 {
				deadModel[id] = live[id]
			}
			delete(live, id)
			delete(owner, id)
		}
		tickOf := func(t time.Time) int64 { return int64(t.Sub(start) / tick) }
		ownedBy := func(o string) []sessions.ID {
			var out []sessions.ID
			for id, oo := range owner {
				if oo == o {
					out = append(out, id)
				}
			}
			return out
		}

		// setOwner gives id the owner o and checks the engine did what the
		// model says, evictions included.
		setOwner := func(rt *rapid.T, id sessions.ID, o string) {
			h := handles[id]
			err := h.SetOwner(o)
			var want error
			var victims []sessions.ID
			cur, had := owner[id]
			switch {
			case len(o) > sessions.MaxOwnerLen:
				want = sessions.ErrInvalidOwner
			case live[id] == nil:
				want = sessions.ErrEnded
			case o == "" || (had && cur == o) || limit == 0:
			default:
				others := ownedBy(o)
				if len(others) >= limit && refuse {
					want = sessions.ErrOwnerLimit
					break
				}
				// Least recent touch (to the tick), then oldest, then least ID.
				slices.SortFunc(others, func(a, b sessions.ID) int {
					sa, sb := live[a], live[b]
					if ta, tb := tickOf(sa.touched), tickOf(sb.touched); ta != tb {
						return int(ta - tb)
					}
					if c := sa.created.Compare(sb.created); c != 0 {
						return c
					}
					return bytes.Compare(a[:], b[:])
				})
				victims = others[:max(0, len(others)-limit+1)]
			}
			if !errors.Is(err, want) || (want == nil) != (err == nil) {
				rt.Fatalf("SetOwner(%.8q) = %v, want %v", o, err, want)
			}
			if err != nil {
				return
			}
			for _, v := range victims {
				end(v, sessions.Evicted)
			}
			if o == "" {
				delete(owner, id)
			} else {
				owner[id] = o
			}
		}

		rt.Repeat(map[string]func(*rapid.T){
			"create": func(rt *rapid.T) {
				for range rapid.SampledFrom([]int{1, 1, 3, 13}).Draw(rt, "n") {
					s, err := m.Create()
					if err != nil {
						rt.Fatal(err)
					}
					live[s.ID()] = &modelSession{created: clk.Now(), touched: clk.Now(), idle: 10 * time.Second, handle: s}
					handles[s.ID()] = s
					ids = append(ids, s.ID())
				}
			},
			"get": func(rt *rapid.T) {
				id := pick(rt)
				if _, ok := m.Get(id); ok != (live[id] != nil) {
					rt.Fatalf("Get: found=%v, model live=%v", ok, live[id] != nil)
				}
				if s := live[id]; s != nil {
					s.touched = clk.Now()
				}
			},
			"renew": func(rt *rapid.T) {
				id := pick(rt)
				old := live[id]
				s, err := m.Renew(id)
				if (err == nil) != (old != nil) {
					rt.Fatalf("Renew = %v, model live=%v", err, old != nil)
				}
				if err != nil {
					return
				}
				o, had := owner[id]
				delete(live, id)
				delete(owner, id)
				old.touched, old.handle = clk.Now(), s
				live[s.ID()] = old
				if had {
					owner[s.ID()] = o
				}
				handles[s.ID()] = s
				ids = append(ids, s.ID())
				if got := s.Owner(); got != o {
					rt.Fatalf("owner after Renew %q, want %q", got, o)
				}
			},
			"expire": func(rt *rapid.T) {
				id := pick(rt)
				if got, want := m.Expire(id), live[id] != nil; got != want {
					rt.Fatalf("Expire = %v, model live=%v", got, want)
				}
				if live[id] != nil {
					end(id, sessions.Explicit)
				}
			},
			"setOwner": func(rt *rapid.T) {
				id := pick(rt)
				if _, ok := handles[id]; ok {
					setOwner(rt, id, rapid.SampledFrom(owners).Draw(rt, "owner"))
				}
			},
			"login": func(rt *rapid.T) {
				// A new session given a busy owner at once: where
				// MaxPerOwner has a choice of victims.
				s, err := m.Create()
				if err != nil {
					rt.Fatal(err)
				}
				live[s.ID()] = &modelSession{created: clk.Now(), touched: clk.Now(), idle: 10 * time.Second, handle: s}
				handles[s.ID()] = s
				ids = append(ids, s.ID())
				setOwner(rt, s.ID(), rapid.SampledFrom(owners[1:3]).Draw(rt, "owner"))
			},
			"expireOwner": func(rt *rapid.T) {
				o := rapid.SampledFrom(owners).Draw(rt, "owner")
				want := ownedBy(o)
				if o == "" {
					want = nil
				}
				if got := m.ExpireOwner(o); got != len(want) {
					rt.Fatalf("ExpireOwner(%.8q) = %d, model has %d", o, got, len(want))
				}
				for _, id := range want {
					end(id, sessions.Explicit)
				}
			},
			"owned": func(rt *rapid.T) {
				o := rapid.SampledFrom(owners).Draw(rt, "owner")
				got := m.Owned(o)
				want := ownedBy(o)
				if o == "" {
					want = nil
				}
				slices.SortFunc(want, func(a, b sessions.ID) int {
					if c := live[a].created.Compare(live[b].created); c != 0 {
						return c
					}
					return bytes.Compare(a[:], b[:])
				})
				if len(got) != len(want) {
					rt.Fatalf("Owned(%.8q): %d sessions, model has %d", o, len(got), len(want))
				}
				for i, g := range got {
					s := live[want[i]]
					access := start.Add(time.Duration(tickOf(s.touched)) * tick)
					if g.Session.ID() != want[i] || !g.Created.Equal(s.created) || !g.LastAccess.Equal(access) {
						rt.Fatalf("Owned(%.8q)[%d] = %v created %v access %v; model %v created %v access %v",
							o, i, g.Session, g.Created, g.LastAccess, want[i], s.created, access)
					}
				}
			},
			"advance": func(rt *rapid.T) {
				for range rapid.SampledFrom([]int{1, 2, 5, 25}).Draw(rt, "steps") {
					step(m, clk, 500*time.Millisecond)
					now := clk.Now()
					for id, s := range live {
						if dl, _ := s.deadline(abs); !now.Before(dl.Add(2 * tick)) {
							end(id, 0)
						}
					}
				}
			},
			"": func(rt *rapid.T) {
				m.Sweep()
				for id := range live {
					if len(log.get(id)) > 0 {
						end(id, 0) // within the window the model allows; checked below
					}
				}
				for id, why := range dead {
					ends := log.get(id)
					ok := len(ends) == 1
					if ok && why != 0 {
						ok = ends[0].reason == why
					} else if ok {
						s := deadModel[id]
						dl, _ := s.deadline(abs)
						ok = !ends[0].at.Before(dl) && s.reasonOK(abs, ends[0].reason)
					}
					if !ok {
						rt.Fatalf("session %v: endings %v, want exactly one (%v)", id, ends, why)
					}
				}
				// The index: exactly the live owned sessions, under their owners.
				idx, err := sessions.OwnerIndex(m)
				if err != nil {
					rt.Fatal(err)
				}
				want := map[string][]sessions.ID{}
				for id, o := range owner {
					want[o] = append(want[o], id)
				}
				n := 0
				for o, got := range idx {
					slices.SortFunc(got, func(a, b sessions.ID) int { return bytes.Compare(a[:], b[:]) })
					w := want[o]
					slices.SortFunc(w, func(a, b sessions.ID) int { return bytes.Compare(a[:], b[:]) })
					if !slices.Equal(got, w) {
						rt.Fatalf("index holds %v under %.8q, model %v", got, o, w)
					}
					n += len(got)
				}
				if len(idx) != len(want) {
					rt.Fatalf("index has %d owners, model %d", len(idx), len(want))
				}
				if st := m.Stats(); st.Owners != len(want) || st.OwnedSessions != n || m.Len() != len(live) {
					rt.Fatalf("stats: %d owners, %d owned, %d live; model %d, %d, %d", st.Owners, st.OwnedSessions, m.Len(), len(want), n, len(live))
				}
				for id, s := range live {
					if got := s.handle.Owner(); got != owner[id] {
						rt.Fatalf("Owner() = %.8q, model %.8q", got, owner[id])
					}
				}
			},
		})
	})
}
