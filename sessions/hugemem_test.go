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
