package sessions

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestSharedCallbacks checks the interning of per-session callbacks: a func
// value shared by many sessions runs once for each of them, in order with
// their other callbacks, follows a renewal, and its note is gone once no
// session holds it; distinct closures each run for their own session.
func TestSharedCallbacks(t *testing.T) {
	m, err := newManager(Config{Shards: 1, IdleTimeout: time.Hour}, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[ID][]string{}
	logf := func(id ID, what string) {
		mu.Lock()
		got[id] = append(got[id], what)
		mu.Unlock()
	}
	shared := func(s Session, _ Reason) { logf(s.ID(), "shared") }
	var ids []ID
	for i := range 100 {
		s, err := m.Create()
		if err != nil {
			t.Fatal(err)
		}
		switch i % 4 {
		case 0:
			s.NotifyOnExpire(shared)
		case 1:
			s.NotifyOnExpire(shared)
			s.NotifyOnExpire(func(s Session, _ Reason) { logf(s.ID(), "second") })
		case 2:
			s.NotifyOnExpire(func(s Session, _ Reason) { logf(s.ID(), "own") })
			s.NotifyOnExpire(shared)
		case 3:
			s.NotifyOnExpire(shared)
			r, err := m.Renew(s.ID())
			if err != nil {
				t.Fatal(err)
			}
			s = r
		}
		ids = append(ids, s.ID())
	}
	sh := &m.st.(*memStore).shards[0]
	sh.mu.Lock()
	if n := sh.notes[sh.noteNums[funcKey(shared)]-1].refs; n != 50 {
		t.Errorf("shared note held by %d sessions, want 50", n)
	}
	sh.mu.Unlock()
	for _, id := range ids {
		m.Expire(id)
	}
	m.Sweep()
	want := [][]string{{"shared"}, {"shared", "second"}, {"own", "shared"}, {"shared"}}
	for i, id := range ids {
		if g, w := got[id], want[i%4]; len(g) != len(w) || (len(g) > 0 && (g[0] != w[0] || g[len(g)-1] != w[len(w)-1])) {
			t.Errorf("session %d ran %v, want %v", i, g, w)
		}
	}
	sh.mu.Lock()
	if len(sh.noteNums) != 0 || len(sh.freeNums) != len(sh.notes) {
		t.Errorf("notes left: %d keyed, %d of %d free", len(sh.noteNums), len(sh.freeNums), len(sh.notes))
	}
	sh.mu.Unlock()
	m.Close(context.Background())
}
