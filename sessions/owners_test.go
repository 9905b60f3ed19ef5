package sessions_test

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionwheel/sessionwheel/sessions"
)

// checkIndex fails the test if the owner index disagrees with itself, and
// returns it with each owner's IDs sorted.
func checkIndex(t testing.TB, m *sessions.Manager) map[string][]sessions.ID {
	t.Helper()
	idx, err := sessions.OwnerIndex(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, ids := range idx {
		slices.SortFunc(ids, func(a, b sessions.ID) int { return strings.Compare(string(a[:]), string(b[:])) })
	}
	return idx
}

func ownedIDs(m *sessions.Manager, owner string) []sessions.ID {
	var ids []sessions.ID
	for _, o := range m.Owned(owner) {
		ids = append(ids, o.Session.ID())
	}
	return ids
}

func mustSetOwner(t testing.TB, s sessions.Session, owner string) {
	t.Helper()
	if err := s.SetOwner(owner); err != nil {
		t.Fatalf("SetOwner(%q): %v", owner, err)
	}
}

// An owner's listing has its live sessions with their times, oldest first,
// and nobody else's; ExpireOwner ends exactly them, as Explicit, with their
// callbacks, and the owner leaves the index.
func TestOwnedAndExpireOwner(t *testing.T) {
	m, clk, log := newManager(t, sessions.Config{})
	a1 := mustCreate(t, m)
	step(m, clk, 1500*time.Millisecond)
	a2, b1, none := mustCreate(t, m), mustCreate(t, m), mustCreate(t, m)
	mustSetOwner(t, a2, "alice")
	mustSetOwner(t, a1, "alice")
	mustSetOwner(t, b1, "bob")
	step(m, clk, 2*time.Second)
	m.Touch(a1.ID())

	got := m.Owned("alice")
	if len(got) != 2 || got[0].Session.ID() != a1.ID() || got[1].Session.ID() != a2.ID() {
		t.Fatalf("Owned(alice) = %v, want a1, a2 (oldest first)", got)
	}
	if !got[0].Created.Equal(a1.CreatedAt()) || !got[0].LastAccess.Equal(a1.LastAccess()) || !got[0].Deadline.Equal(a1.Deadline()) {
		t.Fatalf("a1 listed with %+v; its own times: %v %v %v", got[0], a1.CreatedAt(), a1.LastAccess(), a1.Deadline())
	}
	if !got[0].LastAccess.After(got[0].Created) || got[1].LastAccess.After(got[1].Created) {
		t.Fatalf("last access not the touch's: %+v", got)
	}
	if a1.Owner() != "alice" || b1.Owner() != "bob" || none.Owner() != "" {
		t.Fatalf("owners %q %q %q", a1.Owner(), b1.Owner(), none.Owner())
	}
	if st := m.Stats(); st.Owners != 2 || st.OwnedSessions != 3 {
		t.Fatalf("stats: %d owners, %d owned; want 2, 3", st.Owners, st.OwnedSessions)
	}

	if n := m.ExpireOwner("alice"); n != 2 {
		t.Fatalf("ExpireOwner = %d, want 2", n)
	}
	m.Sweep()
	for _, s := range []sessions.Session{a1, a2} {
		if ends := log.get(s.ID()); len(ends) != 1 || ends[0].reason != sessions.Explicit {
			t.Fatalf("alice's session: endings %v, want one Explicit", ends)
		}
	}
	if !b1.Alive() || !none.Alive() || m.Len() != 2 {
		t.Fatal("ExpireOwner ended a session that was not alice's")
	}
	if got := m.Owned("alice"); got != nil {
		t.Fatalf("Owned after ExpireOwner = %v", got)
	}
	if n := m.ExpireOwner("alice"); n != 0 {
		t.Fatalf("second ExpireOwner = %d", n)
	}
	if idx := checkIndex(t, m); len(idx) != 1 || !slices.Equal(idx["bob"], []sessions.ID{b1.ID()}) {
		t.Fatalf("index %v, want bob only", idx)
	}
	if n := m.ExpireOwner(""); n != 0 || !none.Alive() {
		t.Fatal(`ExpireOwner("") ended sessions without an owner`)
	}
}

// Renew keeps the owner, and the listing follows the new ID.
func TestRenewKeepsOwner(t *testing.T) {
	for _, shards := range []int{1, 16} {
		m, _, _ := newManager(t, sessions.Config{Shards: shards})
		var renewed []sessions.ID
		for range 20 {
			s := mustCreate(t, m)
			mustSetOwner(t, s, "alice")
			r, err := m.Renew(s.ID())
			if err != nil {
				t.Fatal(err)
			}
			if r.Owner() != "alice" || s.Owner() != "" {
				t.Fatalf("after Renew: new %q, old handle %q", r.Owner(), s.Owner())
			}
			renewed = append(renewed, r.ID())
		}
		got := ownedIDs(m, "alice")
		slices.SortFunc(got, func(a, b sessions.ID) int { return strings.Compare(string(a[:]), string(b[:])) })
		slices.SortFunc(renewed, func(a, b sessions.ID) int { return strings.Compare(string(a[:]), string(b[:])) })
		if !slices.Equal(got, renewed) {
			t.Fatalf("shards %d: Owned lists %d sessions, not the renewed IDs", shards, len(got))
		}
		checkIndex(t, m)
	}
}

// However a session ends, its owner stops listing it, and an owner with no
// session left leaves the index.
func TestOwnerLeavesIndexHoweverItEnds(t *testing.T) {
	ends := map[string]func(t *testing.T, m *sessions.Manager, clk interface{ Advance(time.Duration) }, s sessions.Session){
		"idle": func(t *testing.T, m *sessions.Manager, clk interface{ Advance(time.Duration) }, s sessions.Session) {
			clk.Advance(12 * time.Second)
			m.Sweep()
		},
		"absolute": func(t *testing.T, m *sessions.Manager, clk interface{ Advance(time.Duration) }, s sessions.Session) {
			for range 4 {
				clk.Advance(2 * time.Second)
				m.Touch(s.ID())
			}
			m.Sweep()
		},
		"explicit": func(t *testing.T, m *sessions.Manager, _ interface{ Advance(time.Duration) }, s sessions.Session) {
			s.Expire()
		},
		"evicted": func(t *testing.T, m *sessions.Manager, _ interface{ Advance(time.Duration) }, s sessions.Session) {
			mustCreate(t, m) // MaxSessions 1, Evict
		},
		"shutdown": func(t *testing.T, m *sessions.Manager, _ interface{ Advance(time.Duration) }, s sessions.Session) {
			m.Close(context.Background())
		},
	}
	for name, end := range ends {
		for _, discard := range []bool{false, true} {
			if discard && name != "shutdown" {
				continue
			}
			m, clk, _ := newManager(t, sessions.Config{AbsoluteTimeout: 7 * time.Second, MaxSessions: 1, Evict: true, DiscardOnClose: discard})
			s := mustCreate(t, m)
			mustSetOwner(t, s, "alice")
			if st := m.Stats(); st.Owners != 1 {
				t.Fatalf("%s: %d owners before", name, st.Owners)
			}
			end(t, m, clk, s)
			if s.Alive() {
				t.Fatalf("%s: the session did not end", name)
			}
			if idx := checkIndex(t, m); len(idx) != 0 {
				t.Fatalf("%s (discard %v): index %v after the session ended", name, discard, idx)
			}
			if st := m.Stats(); st.Owners != 0 || st.OwnedSessions != 0 {
				t.Fatalf("%s: stats %d owners, %d owned", name, st.Owners, st.OwnedSessions)
			}
		}
	}
}

// A session past its end that the driver has not reached is never listed.
func TestOwnedSkipsOverdue(t *testing.T) {
	m, clk, _ := newTestManager(t, sessions.Config{}, nil, true)
	s := mustCreate(t, m)
	mustSetOwner(t, s, "alice")
	clk.Advance(12 * time.Second) // no Sweep: manual driver
	if got := m.Owned("alice"); got != nil {
		t.Fatalf("Owned lists a session past its end: %v", got)
	}
	if n := m.ExpireOwner("alice"); n != 0 {
		t.Fatalf("ExpireOwner counted an overdue session: %d", n)
	}
	if m.Len() != 0 || len(checkIndex(t, m)) != 0 {
		t.Fatal("the overdue session was not ended by ExpireOwner")
	}
}

// MaxPerOwner ends the owner's least recently used other session, as
// Evicted; ties go to the oldest.
func TestMaxPerOwnerEvictsLeastRecent(t *testing.T) {
	m, clk, log := newManager(t, sessions.Config{MaxPerOwner: 2, Shards: 4})
	s1 := mustCreate(t, m)
	step(m, clk, 100*time.Millisecond)
	s2 := mustCreate(t, m) // the same tick as s1: a tie broken by creation
	mustSetOwner(t, s1, "alice")
	mustSetOwner(t, s2, "alice")
	s3 := mustCreate(t, m)
	mustSetOwner(t, s3, "alice")
	m.Sweep()
	if ends := log.get(s1.ID()); len(ends) != 1 || ends[0].reason != sessions.Evicted {
		t.Fatalf("s1 (oldest of a tie): endings %v, want Evicted", ends)
	}
	step(m, clk, 2*time.Second)
	m.Touch(s2.ID()) // s3 is now the least recently used
	s4 := mustCreate(t, m)
	mustSetOwner(t, s4, "alice")
	m.Sweep()
	if ends := log.get(s3.ID()); len(ends) != 1 || ends[0].reason != sessions.Evicted {
		t.Fatalf("s3: endings %v, want Evicted", ends)
	}
	if !s2.Alive() || !s4.Alive() || m.Len() != 2 {
		t.Fatal("the wrong sessions were evicted")
	}
	mustSetOwner(t, s4, "alice") // already alice's: no new session, no eviction
	if st := m.Stats(); st.OwnerEvictions != 2 || st.Ended[sessions.Evicted] != 2 || st.OwnedSessions != 2 {
		t.Fatalf("stats: %d owner evictions, %d evicted, %d owned", st.OwnerEvictions, st.Ended[sessions.Evicted], st.OwnedSessions)
	}
	other := mustCreate(t, m)
	mustSetOwner(t, other, "bob")
	if !s2.Alive() || !s4.Alive() {
		t.Fatal("another owner's session counted against alice's limit")
	}
}

// Under RefuseOverMaxPerOwner, SetOwner fails with ErrOwnerLimit and the
// session keeps its owner; a session past its end does not count.
func TestMaxPerOwnerRefuses(t *testing.T) {
	m, clk, _ := newTestManager(t, sessions.Config{MaxPerOwner: 1, RefuseOverMaxPerOwner: true}, nil, true)
	s1, s2 := mustCreate(t, m), mustCreate(t, m)
	mustSetOwner(t, s1, "alice")
	mustSetOwner(t, s2, "bob")
	if err := s2.SetOwner("alice"); !errors.Is(err, sessions.ErrOwnerLimit) {
		t.Fatalf("SetOwner over the limit = %v, want ErrOwnerLimit", err)
	}
	if s2.Owner() != "bob" || !s1.Alive() || s1.Owner() != "alice" {
		t.Fatalf("a refused SetOwner changed something: %q %q", s1.Owner(), s2.Owner())
	}
	clk.Advance(6 * time.Second)
	m.Touch(s2.ID())
	clk.Advance(6 * time.Second) // s1 is past its end; no Sweep has run
	mustSetOwner(t, s2, "alice")
	if s1.Alive() || m.Len() != 1 || m.Stats().OwnerEvictions != 0 {
		t.Fatal("the overdue session was not ended, or was counted as evicted")
	}
	if ids := ownedIDs(m, "alice"); !slices.Equal(ids, []sessions.ID{s2.ID()}) {
		t.Fatalf("alice owns %v", ids)
	}
}

// Owners are bounded in length, compared byte for byte, and "" is none.
func TestSetOwnerInput(t *testing.T) {
	m, _, _ := newManager(t, sessions.Config{})
	s := mustCreate(t, m)
	long := strings.Repeat("x", sessions.MaxOwnerLen)
	if err := s.SetOwner(long + "y"); !errors.Is(err, sessions.ErrInvalidOwner) {
		t.Fatalf("SetOwner of %d bytes = %v, want ErrInvalidOwner", len(long)+1, err)
	}
	if s.Owner() != "" {
		t.Fatal("a refused owner was kept (truncated?)")
	}
	mustSetOwner(t, s, long)
	if s.Owner() != long || len(m.Owned(long)) != 1 || m.Owned(long[:255]) != nil {
		t.Fatal("the longest owner was not kept whole")
	}
	t2 := mustCreate(t, m)
	mustSetOwner(t, t2, "a\x00\xff")
	if m.Owned("a") != nil || m.Owned("a\x00") != nil || len(m.Owned("a\x00\xff")) != 1 {
		t.Fatal("owners that share a prefix were mixed")
	}
	// Moving: the old owner no longer lists it, and leaves the index.
	mustSetOwner(t, s, "bob")
	if m.Owned(long) != nil || s.Owner() != "bob" {
		t.Fatal("SetOwner did not move the session")
	}
	mustSetOwner(t, s, "")
	if s.Owner() != "" || m.Owned("bob") != nil || m.Owned("") != nil {
		t.Fatal(`SetOwner("") did not remove the owner`)
	}
	if idx := checkIndex(t, m); len(idx) != 1 {
		t.Fatalf("index %v", idx)
	}
	s.Expire()
	if err := s.SetOwner("carol"); !errors.Is(err, sessions.ErrEnded) {
		t.Fatalf("SetOwner on an ended session = %v", err)
	}
	var zero sessions.Session
	if err := zero.SetOwner("x"); !errors.Is(err, sessions.ErrEnded) || zero.Owner() != "" {
		t.Fatal("the zero Session has an owner")
	}
}

// A callback can read the owner of the session that ended, though the
// index no longer lists it.
func TestOwnerInCallback(t *testing.T) {
	m, _, _ := newManager(t, sessions.Config{})
	s := mustCreate(t, m)
	mustSetOwner(t, s, "alice")
	got := make(chan string, 1)
	s.NotifyOnExpire(func(s sessions.Session, _ sessions.Reason) { got <- s.Owner() })
	s.Expire()
	m.Sweep()
	if o := <-got; o != "alice" {
		t.Fatalf("Owner in the callback = %q", o)
	}
}

// The hooks a snapshot uses: read a slot's owner, and set it on restore.
func TestSnapshotOwnerHooks(t *testing.T) {
	m, _, _ := newManager(t, sessions.Config{})
	s, plain := mustCreate(t, m), mustCreate(t, m)
	mustSetOwner(t, s, "alice")
	if sessions.SlotOwnerOf(s) != "alice" || sessions.SlotOwnerOf(plain) != "" {
		t.Fatal("SlotOwnerOf")
	}
	if err := sessions.RestoreOwner(plain, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := sessions.RestoreOwner(plain, strings.Repeat("x", sessions.MaxOwnerLen+1)); !errors.Is(err, sessions.ErrInvalidOwner) {
		t.Fatalf("restore of a long owner = %v", err)
	}
	if n := len(m.Owned("alice")); n != 2 {
		t.Fatalf("alice owns %d after restore, want 2", n)
	}
	checkIndex(t, m)
}

// ExpireOwner racing with Renew, SetOwner and the driver on the owner's
// sessions: every session of the owner ends exactly once, none is left in
// the index, and the count ExpireOwner reports are the Explicit endings.
func TestExpireOwnerRacingRenew(t *testing.T) {
	for round := range 20 {
		m, clk, log := newManager(t, sessions.Config{Shards: 8, MaxPerOwner: 40})
		var mu sync.Mutex
		var ids []sessions.ID
		for range 32 {
			s := mustCreate(t, m)
			mustSetOwner(t, s, "alice")
			ids = append(ids, s.ID())
		}
		var wg sync.WaitGroup
		var expired int
		for g := range 4 {
			wg.Go(func() {
				for i := g; i < 32; i += 4 {
					mu.Lock()
					id := ids[i]
					mu.Unlock()
					if r, err := m.Renew(id); err == nil {
						mu.Lock()
						ids = append(ids, r.ID())
						mu.Unlock()
						if i%3 == 0 {
							r.SetOwner("alice") // a no-op on the limit, but it locks
						}
					}
				}
			})
		}
		wg.Go(func() { clk.Advance(time.Duration(round) * time.Millisecond) })
		wg.Go(func() { expired = m.ExpireOwner("alice") })
		wg.Wait()
		expired += m.ExpireOwner("alice") // sessions renewed after the first call
		m.Sweep()
		if idx := checkIndex(t, m); len(idx) != 0 {
			t.Fatalf("round %d: index %v after ExpireOwner", round, idx)
		}
		if m.Len() != 0 {
			t.Fatalf("round %d: %d sessions left", round, m.Len())
		}
		if log.count() != 32 || expired != 32 {
			t.Fatalf("round %d: %d endings, %d reported; want 32 each", round, log.count(), expired)
		}
		m.Close(context.Background())
	}
}

// Logins, renewals, logouts everywhere, listings and the driver at once,
// under MaxPerOwner: no deadlock between the locks they take, no owner ever
// lists more than the limit, every session ends at most once, and at the
// end the index agrees with itself and the counts add up.
func TestOwnersConcurrent(t *testing.T) {
	const limit = 3
	m, clk, log := newManager(t, sessions.Config{IdleTimeout: 2 * time.Second, Tick: 100 * time.Millisecond,
		Shards: 4, MaxPerOwner: limit})
	owners := []string{"alice", "bob", "carol"}
	var wg sync.WaitGroup
	var expired [4]int
	for g := range 4 {
		wg.Go(func() {
			var mine []sessions.ID
			for i := range 3000 {
				o := owners[(g+i)%len(owners)]
				switch i % 7 {
				case 0, 1, 2:
					s, err := m.Create()
					if err != nil {
						t.Error(err)
						return
					}
					if err := s.SetOwner(o); err != nil && !errors.Is(err, sessions.ErrEnded) {
						t.Error(err)
						return
					}
					mine = append(mine, s.ID())
				case 3, 4:
					if len(mine) > 0 {
						if r, err := m.Renew(mine[len(mine)-1]); err == nil {
							mine[len(mine)-1] = r.ID()
						}
					}
				case 5:
					if n := len(m.Owned(o)); n > limit {
						t.Errorf("%s lists %d sessions, over the limit %d", o, n, limit)
					}
				case 6:
					if i%5 == 0 {
						expired[g] += m.ExpireOwner(o)
					}
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for moving := true; moving; {
		select {
		case <-done:
			moving = false
		default:
			clk.Advance(20 * time.Millisecond) // the driver ends what is due
			runtime.Gosched()
		}
	}
	m.Sweep()
	checkIndex(t, m)
	st := m.Stats()
	var ended uint64
	for _, n := range st.Ended {
		ended += n
	}
	if st.Created != uint64(st.Active)+ended || uint64(log.count()) != ended {
		t.Fatalf("created %d, active %d, ended %d, callbacks %d", st.Created, st.Active, ended, log.count())
	}
	if st.OwnedSessions > len(owners)*limit || st.OwnerEvictions == 0 {
		t.Fatalf("%d owned sessions, %d owner evictions: the test checked nothing", st.OwnedSessions, st.OwnerEvictions)
	}
	for _, o := range owners {
		m.ExpireOwner(o)
	}
	m.Sweep()
	if idx := checkIndex(t, m); len(idx) != 0 {
		t.Fatalf("index after expiring every owner: %v", idx)
	}
	t.Logf("%d created, %d evicted for owners, %d expired by ExpireOwner", st.Created, st.OwnerEvictions, expired[0]+expired[1]+expired[2]+expired[3])
}

// A session without an owner costs nothing beside its record: not after
// its owner is removed, nor after a SetOwner that was refused.
func TestNoOwnerNoSideRecord(t *testing.T) {
	m, _, _ := newManager(t, sessions.Config{MaxPerOwner: 1, RefuseOverMaxPerOwner: true})
	s, other := mustCreate(t, m), mustCreate(t, m)
	mustSetOwner(t, s, "alice")
	if n := sessions.SideRecords(m); n != 1 {
		t.Fatalf("%d side records with one owned session", n)
	}
	if err := other.SetOwner("alice"); !errors.Is(err, sessions.ErrOwnerLimit) {
		t.Fatal(err)
	}
	mustSetOwner(t, s, "")
	if n := sessions.SideRecords(m); n != 0 {
		t.Fatalf("%d side records with no owner, value or callback", n)
	}
	s.Set("k", 1)
	mustSetOwner(t, s, "bob")
	mustSetOwner(t, s, "")
	if v, err := s.Get("k"); err != nil || v != 1 || sessions.SideRecords(m) != 1 {
		t.Fatalf("removing the owner lost the values: %v %v", v, err)
	}
}
