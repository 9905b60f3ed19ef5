package sessions

import (
	"testing"
	"unsafe"
)

// TestArenaBlocks checks what the table relies on: blocks are zeroed,
// aligned, do not overlap, survive the arena's other allocations, and
// everything counted off the heap is uncounted again by free and release.
func TestArenaBlocks(t *testing.T) {
	var a arena
	var chunks [][]record
	for i := range 3000 { // more than one region
		c := allocSlice[record](&a, recChunkLen, 64)
		if uintptr(unsafe.Pointer(&c[0]))%64 != 0 {
			t.Fatalf("chunk %d not aligned to 64", i)
		}
		for j := range c {
			if c[j] != (record{}) {
				t.Fatalf("chunk %d not zeroed", i)
			}
			c[j].gen = uint32(i)
		}
		chunks = append(chunks, c)
	}
	idx := allocSlice[uint32](&a, 3<<20, 4096) // larger than a region
	if uintptr(unsafe.Pointer(&idx[0]))%4096 != 0 {
		t.Fatal("index not page-aligned")
	}
	idx[len(idx)-1] = 7
	for i, c := range chunks {
		for j := range c {
			if c[j].gen != uint32(i) {
				t.Fatalf("chunk %d overwritten", i)
			}
		}
	}
	if offHeap && a.counted < int64(3000*recChunkLen*32+len(idx)*4) {
		t.Fatalf("off-heap bytes %d, less than what was handed out", a.counted)
	}
	mid := a.counted
	freeSlice(&a, idx)
	if offHeap && mid-a.counted < int64(len(idx)*4)-8192 {
		t.Fatalf("free gave back %d of %d bytes", mid-a.counted, len(idx)*4)
	}
	a.release()
	if a.counted != 0 {
		t.Fatalf("%d bytes still counted after release", a.counted)
	}
}

// TestArenaSpare checks that a region prepared ahead of need is where the
// next blocks come from, zeroed and counted, and that release gives back
// a spare that was never used.
func TestArenaSpare(t *testing.T) {
	if !offHeap {
		t.Skip("the table is on the heap in this build (race detector, or not Linux)")
	}
	var a arena
	a.prepare() // nothing wanted yet: no spare
	if a.spare.mapping != nil {
		t.Fatal("prepare made a spare nobody wanted")
	}
	allocSlice[record](&a, recChunkLen, 64) // maps a region: wants a spare
	if !a.wantSpare.Load() {
		t.Fatal("alloc that mapped a region does not want a spare")
	}
	a.prepare()
	if a.spare.mapping == nil || a.wantSpare.Load() {
		t.Fatal("prepare made no spare")
	}
	spare := uintptr(a.spare.base)
	if a.counted != 2*hugePage {
		t.Fatalf("counted %d with one region and a spare, want %d", a.counted, 2*hugePage)
	}
	// Fill the current region, then one block more: from the spare.
	var c []record
	for i := 1; i <= hugePage/(recChunkLen*32); i++ {
		c = allocSlice[record](&a, recChunkLen, 64)
		for j := range c {
			if c[j] != (record{}) {
				t.Fatalf("block %d not zeroed", i)
			}
		}
		c[0].gen = 1
	}
	if p := uintptr(unsafe.Pointer(&c[0])); p != spare {
		t.Fatalf("block after a full region at %#x, not at the spare %#x", p, spare)
	}
	if a.spare.mapping != nil || !a.wantSpare.Load() {
		t.Fatal("the spare was not taken as it should be")
	}
	a.prepare()
	a.release()
	if a.counted != 0 {
		t.Fatalf("%d bytes still counted after release", a.counted)
	}
	a.prepare() // after release: no spare is kept
	if a.spare.mapping != nil {
		t.Fatal("prepare after release kept a spare")
	}
}
