package redisstore

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionwheel/sessionwheel/redisstore/redistest"
	"github.com/sessionwheel/sessionwheel/sessions"
)

// The store on a six-node cluster (three masters, one replica each): every
// bucket in one slot, the buckets spread over the masters, and the
// operations working across them.
func TestCluster(t *testing.T) {
	cl := redistest.Cluster(t, 5*time.Second)
	cfg := sessions.StoreConfig{IdleTimeout: 300 * time.Millisecond, Tick: 10 * time.Millisecond}
	a := open(t, client(t, cl.Addrs...), Options{}, cfg)
	b := open(t, client(t, cl.Addrs...), Options{}, cfg)
	node := cl.Nodes[0]

	t.Run("OneSlotPerBucket", func(t *testing.T) {
		slots := map[string]bool{}
		masters := map[string]int{}
		for bk := range a.keys {
			var id sessions.ID
			id[0] = byte(bk)
			k := a.keys[bk]
			slot := node.MustDo("CLUSTER", "KEYSLOT", k.due)
			for _, key := range []string{k.lease, a.hashKey(bk, id.String()), k.owner + "ada"} {
				if s := node.MustDo("CLUSTER", "KEYSLOT", key); s != slot {
					t.Errorf("bucket %d: %s in slot %s, due set in %s", bk, key, s, slot)
				}
			}
			slots[slot] = true
			masters[slotOwner(t, node, slot)]++
		}
		if len(slots) != len(a.keys) {
			t.Errorf("%d buckets in %d slots, want one each", len(a.keys), len(slots))
		}
		if len(masters) != 3 {
			t.Errorf("buckets per master %v, want all three masters used", masters)
		}
		t.Logf("buckets per master: %v", masters)
	})

	t.Run("CreateLookupTouchRenewOwned", func(t *testing.T) {
		ids := make([]sessions.ID, 20)
		for i := range ids {
			ids[i] = newID(t)
			if _, err := a.Create(bg, ids[i]); err != nil {
				t.Fatal(err)
			}
			if err := a.SetValue(bg, ids[i], "k", []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
			if err := a.SetOwner(bg, ids[i], "ada"); err != nil {
				t.Fatal(err)
			}
		}
		for i, id := range ids {
			if _, err := b.Lookup(bg, id, true); err != nil {
				t.Fatal(err)
			}
			if v, err := b.Value(bg, id, "k"); err != nil || string(v) != fmt.Sprint(i) {
				t.Fatalf("value %q, %v", v, err)
			}
		}
		rec, err := b.Renew(bg, ids[0], newID(t))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Lookup(bg, ids[0], false); !errors.Is(err, sessions.ErrNotFound) {
			t.Fatalf("old id after Renew on a cluster: %v", err)
		}
		owned, err := a.Owned(bg, "ada")
		if err != nil || len(owned) != len(ids) {
			t.Fatalf("Owned = %d records, %v; want %d", len(owned), err, len(ids))
		}
		found := false
		for _, o := range owned {
			found = found || o.ID == rec.ID
		}
		if !found {
			t.Fatalf("renewed session missing from Owned")
		}
	})

	t.Run("ExpireOneWinner", func(t *testing.T) {
		for range 50 {
			id := newID(t)
			if _, err := a.Create(bg, id); err != nil {
				t.Fatal(err)
			}
			var wins atomic.Int32
			var wg sync.WaitGroup
			for _, st := range []*Store{a, b} {
				wg.Go(func() {
					if _, err := st.Expire(bg, id); err == nil {
						wins.Add(1)
					} else if !errors.Is(err, sessions.ErrNotFound) {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if n := wins.Load(); n != 1 {
				t.Fatalf("%d winners", n)
			}
		}
	})

	t.Run("ClaimExactlyOnce", func(t *testing.T) {
		// Everything created so far (live, ending) plus 300 more: each is
		// claimed once, across both stores.
		for range 300 {
			if _, err := a.Create(bg, newID(t)); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		claimed := map[sessions.ID]int{}
		var wg sync.WaitGroup
		for _, st := range []*Store{a, b} {
			wg.Go(func() {
				deadline := time.Now().Add(20 * time.Second)
				for time.Now().Before(deadline) {
					due, _, err := st.Claim(bg, 64)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					for _, e := range due {
						claimed[e.ID]++
					}
					mu.Unlock()
					if err := st.Ack(bg, due); err != nil {
						t.Error(err)
						return
					}
					if n, err := st.Len(bg); err == nil && n == 0 && len(due) == 0 {
						return
					}
					time.Sleep(2 * time.Millisecond)
				}
			})
		}
		wg.Wait()
		for id, n := range claimed {
			if n != 1 {
				t.Errorf("%v claimed %d times", id, n)
			}
		}
		// 20 + 300 sessions created, 50 expired explicitly (claimed by
		// Expire, never acked: not offered before their 30 s lease ends).
		if len(claimed) != 320 {
			t.Errorf("claimed %d endings, want 320", len(claimed))
		}
		if n, err := a.Len(bg); err != nil || n != 0 {
			t.Errorf("Len = %d, %v", n, err)
		}
	})

	// A master killed (no failover yet: the node timeout is long): the
	// sessions of its buckets are unavailable, the others are served, and
	// Claim returns what the live masters have due.
	t.Run("MasterDown", func(t *testing.T) {
		idOn := func(want string, equal bool) sessions.ID {
			for {
				id := newID(t)
				slot := node.MustDo("CLUSTER", "KEYSLOT", a.keys[a.bucket(id)].due)
				if (slotOwner(t, node, slot) == want) == equal {
					return id
				}
			}
		}
		var victim *redistest.Redis
		for _, n := range cl.Nodes[1:] {
			if role, _ := n.Role(); role == "master" {
				victim = n
				break
			}
		}
		down, up := idOn(victim.Addr, true), idOn(victim.Addr, false)
		for _, id := range []sessions.ID{down, up} {
			if _, err := a.Create(bg, id); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.SetIdleTimeout(bg, down, 10*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if err := a.SetIdleTimeout(bg, up, 10*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		victim.Kill()
		if _, err := b.Lookup(bg, down, false); !errors.Is(err, sessions.ErrUnavailable) {
			t.Errorf("lookup on the dead master: %v, want ErrUnavailable", err)
		}
		var got []sessions.Ending
		eventually(t, 10*time.Second, "the live master's ending", func() bool {
			// With nothing due on the live masters, Claim reports the
			// dead one's error; with something, it returns that.
			due, _, err := b.Claim(bg, 100)
			if err != nil && !errors.Is(err, sessions.ErrUnavailable) {
				t.Fatalf("Claim with one master down: %v", err)
			}
			got = append(got, due...)
			return len(got) > 0
		})
		if len(got) != 1 || got[0].ID != up {
			t.Fatalf("claimed %+v, want only %v", got, up)
		}
		if err := b.Ack(bg, got); err != nil {
			t.Fatal(err)
		}
	})
}

// slotOwner returns the address of the master that serves slot, from
// CLUSTER NODES ("<id> <addr@bus> <flags> <master> ... <slot ranges>").
func slotOwner(t *testing.T, n *redistest.Redis, slot string) string {
	t.Helper()
	s, err := strconv.Atoi(slot)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(n.MustDo("CLUSTER", "NODES"), "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.Contains(f[2], "master") {
			continue
		}
		for _, rg := range f[8:] {
			lo, hi, ok := strings.Cut(rg, "-")
			if !ok {
				hi = lo
			}
			l, err1 := strconv.Atoi(lo)
			h, err2 := strconv.Atoi(hi)
			if err1 == nil && err2 == nil && s >= l && s <= h {
				addr, _, _ := strings.Cut(f[1], "@")
				return addr
			}
		}
	}
	t.Fatalf("no master serves slot %d", s)
	return ""
}
