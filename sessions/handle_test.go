package sessions

import (
	"context"
	"errors"
	"testing"
)

// A slot reused 2^30 times wraps its generation; a stale handle must still
// not reach the new session, because the ID differs.
func TestHandleGenerationWrap(t *testing.T) {
	m, err := NewForTest(Config{Shards: 1}, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	old, _ := m.Create()
	old.Expire()
	m.Sweep()
	fresh, _ := m.Create()
	if fresh.ref.slot != old.ref.slot {
		t.Fatalf("the free list did not reuse the slot: %d, %d", fresh.ref.slot, old.ref.slot)
	}
	if err := fresh.Set("k", "fresh"); err != nil {
		t.Fatal(err)
	}
	sh := &m.st.(*memStore).shards[fresh.ref.part]
	sh.mu.Lock()
	r := sh.rec(fresh.ref.slot)
	r.gen = old.ref.gen | r.gen&stateMask // as if the generation had wrapped round
	sh.mu.Unlock()
	if v, err := old.Get("k"); !errors.Is(err, ErrEnded) {
		t.Fatalf("stale handle with a wrapped generation: Get = %v, %v", v, err)
	}
	if err := old.Touch(); !errors.Is(err, ErrEnded) {
		t.Fatalf("stale handle with a wrapped generation: Touch = %v", err)
	}
}
