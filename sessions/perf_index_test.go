package sessions

import (
	"testing"

	"pgregory.net/rapid"
)

// TestIndexGrowthModel checks one shard's index against a Go map while it
// grows incrementally (see idxGrowth): random inserts, removals, endings
// whose records stay readable until they are released (as a session with
// callbacks to run does), releases, slot reuse and lookups of present,
// removed and never-inserted IDs, with IDs crowded onto a few homes and
// tags so that clusters form, wrap around the end and share tags. After
// every step: every ID in the model is found at its slot, none other is,
// the count agrees, and, while the index grows, every live slot's entry is
// where inOld says.
func TestIndexGrowthModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var mem *storeMemory
		if offHeap && rapid.Bool().Draw(t, "offHeap") {
			mem = &storeMemory{}
			defer mem.release()
		}
		s := &shard{shardData: shardData{mem: mem}}
		live := map[ID]uint32{} // in the index
		var gone []ID           // removed from the index: must not be found
		var ending []uint32     // out of the index, record kept, not yet released
		var order []ID
		genID := rapid.Custom(func(t *rapid.T) ID {
			var id ID
			for i := range id {
				id[i] = rapid.Byte().Draw(t, "b")
			}
			switch rapid.IntRange(0, 3).Draw(t, "crowd") {
			case 0:
				id[7] = 0xff // home near the end: probes wrap
			case 1:
				id[7], id[8] = 0x80, 0x42 // one crowded home, one tag
			}
			return id
		})
		remove := func(t *rapid.T, keep bool) {
			i := rapid.IntRange(0, len(order)-1).Draw(t, "victim")
			id := order[i]
			order[i] = order[len(order)-1]
			order = order[:len(order)-1]
			slot, pos, ok := s.find(id)
			if !ok || slot != live[id] {
				t.Fatalf("find before removal = %d, %v; want %d", slot, ok, live[id])
			}
			if rapid.Bool().Draw(t, "trustPos") {
				s.unindexSlot(id, slot, pos)
			} else {
				s.unindexSlot(id, slot, -1)
			}
			if entryOf(s.idx, id, slot) >= 0 {
				t.Fatalf("slot %d: an entry left in the index after its removal", slot)
			}
			delete(live, id)
			gone = append(gone, id)
			if keep {
				r := s.rec(slot)
				r.gen = r.gen&^stateMask | stateEnding
				ending = append(ending, slot)
			} else {
				s.release(slot)
			}
		}
		steps := rapid.IntRange(1, 3000).Draw(t, "steps")
		for step := range steps {
			op := rapid.IntRange(0, 9).Draw(t, "op")
			switch {
			case op < 6 || len(order) == 0: // insert
				id := genID.Draw(t, "id")
				if _, dup := live[id]; dup {
					continue
				}
				slot, ok := s.alloc()
				if !ok {
					t.Fatal("alloc failed")
				}
				r := s.rec(slot)
				*r = record{id: id, gen: r.gen&^stateMask + genStep | stateLive}
				s.index(id, slot)
				live[id] = slot
				order = append(order, id)
			case op < 8:
				remove(t, false)
			case op == 8:
				remove(t, true)
			default:
				if len(ending) > 0 {
					s.release(ending[0])
					ending = ending[1:]
				}
			}
			seen := map[uint32]bool{} // no slot has two entries in the index
			for _, e := range s.idx {
				if e != 0 && seen[e&idxSlotMask] {
					t.Fatalf("slot %d twice in the index after op %d (growing %v)", e&idxSlotMask-1, op, s.old != nil)
				}
				seen[e&idxSlotMask] = true
			}
			if s.count != len(live) {
				t.Fatalf("count %d, model %d", s.count, len(live))
			}
			if load := float64(s.count) / float64(len(s.idx)); load > 0.85 {
				t.Fatalf("load %.2f above 0.85", load)
			}
			if s.old == nil && step%64 != 0 && step != steps-1 {
				continue // check everything while the index grows, else now and then
			}
			for id, slot := range live {
				if got, _, ok := s.find(id); !ok || got != slot {
					t.Fatalf("lost id (slot %d): got %d, %v", slot, got, ok)
				}
				tbl := s.idx
				if s.inOld(slot) {
					tbl = s.old
				}
				if _, _, ok := s.findIn(tbl, id, false); !ok {
					t.Fatalf("slot %d not in the index inOld names (growing %v)", slot, s.old != nil)
				}
			}
			if len(gone) > 64 {
				gone = gone[len(gone)-64:]
			}
			for _, id := range gone {
				if _, ok := live[id]; ok {
					continue // the same ID drawn again and inserted anew
				}
				if slot, _, ok := s.find(id); ok {
					t.Fatalf("removed id found at slot %d (state %d, growing %v)", slot, s.rec(slot).gen&stateMask, s.old != nil)
				}
			}
			if id := genID.Draw(t, "absent"); !isIn(live, id) {
				if slot, _, ok := s.find(id); ok {
					t.Fatalf("absent id found at slot %d", slot)
				}
			}
		}
	})
}

func isIn(m map[ID]uint32, id ID) bool {
	_, ok := m[id]
	return ok
}
