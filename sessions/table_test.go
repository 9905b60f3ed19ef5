package sessions

import (
	"math/rand/v2"
	"testing"
)

// TestIndexAgainstMap drives one shard's index (insert through alloc and
// index, delete through unindex, growth included) with random IDs, some
// sharing their first byte so that clusters form and wrap around the end,
// and checks every lookup against a map.
func TestIndexAgainstMap(t *testing.T) {
	indexAgainstMap(t, &shard{}, 30000)
}

// TestIndexAgainstMapOffHeap is TestIndexAgainstMap with the shard's
// chunks and indexes from an arena (huge pages where the OS allows), long
// enough for indexes of bigIndex entries and more, which are given back
// when replaced.
func TestIndexAgainstMapOffHeap(t *testing.T) {
	if !offHeap {
		t.Skip("the table is on the heap in this build (race detector, or not Linux)")
	}
	mem := &storeMemory{}
	defer mem.release()
	indexAgainstMap(t, &shard{shardData: shardData{mem: mem}}, 100000)
}

func indexAgainstMap(t *testing.T, s *shard, steps int) {
	r := rand.New(rand.NewPCG(3, 4))
	live := map[ID]uint32{}
	var order []ID
	newID := func() ID {
		var id ID
		for i := range id {
			id[i] = byte(r.Uint32())
		}
		if r.IntN(4) == 0 {
			id[7] = 0xff // hash near the top: home at the end of the table, probes wrap
		}
		return id
	}
	for step := range steps {
		if len(order) == 0 || r.IntN(5) < 3 {
			id := newID()
			slot, ok := s.alloc()
			if !ok {
				t.Fatal("alloc failed")
			}
			rec := s.rec(slot)
			*rec = record{id: id, gen: rec.gen&^stateMask + genStep | stateLive}
			s.index(id, slot)
			live[id] = slot
			order = append(order, id)
		} else {
			i := r.IntN(len(order))
			id := order[i]
			order[i] = order[len(order)-1]
			order = order[:len(order)-1]
			slot, pos, ok := s.find(id)
			if !ok || slot != live[id] {
				t.Fatalf("step %d: find before delete = %d, %v; want %d", step, slot, ok, live[id])
			}
			s.unindex(pos)
			s.release(slot)
			delete(live, id)
			if _, _, ok := s.find(id); ok {
				t.Fatalf("step %d: deleted id still found", step)
			}
		}
		if step%5000 == 0 || step == steps-1 {
			if s.count != len(live) {
				t.Fatalf("count %d, map %d", s.count, len(live))
			}
			for id, slot := range live {
				if got, _, ok := s.find(id); !ok || got != slot {
					t.Fatalf("step %d: lost id (slot %d): got %d, %v", step, slot, got, ok)
				}
			}
			if load := float64(s.count) / float64(len(s.idx)); load > 0.85 {
				t.Fatalf("load %.2f above 0.85", load)
			}
		}
		if _, _, ok := s.find(newID()); ok {
			t.Fatal("found an id never inserted")
		}
	}
}
