package sessions

import (
	"os"
	"sync"
	"sync/atomic"
	"unsafe"
)

// The table's large pointer-free arrays (record and birth chunks, wheel
// nodes, large indexes) are carved from regions of whole 2 MiB pages
// mapped outside the Go heap and marked for transparent huge pages, where
// the operating system allows it (hugemem_linux.go). A touch at 10M
// sessions makes two dependent random accesses (index entry, then record);
// with 4 KiB pages each of them misses the TLB as well as the cache and
// pays a page-table walk, which costs as much as the miss itself. With
// 2 MiB pages the whole table is within the TLB's reach.
//
// Memory off the heap is invisible to the garbage collector, which is
// right for arrays without pointers, and to runtime.MemStats:
// Stats.OffHeapBytes reports it. A region is never moved, so records keep
// their addresses.
// Regions are given back when the store is garbage (runtime.AddCleanup on
// its shards), never earlier: a handle used after Close still reads its
// record. Where huge pages are not available, and under the race detector
// (which does not see memory off the heap), everything comes from the heap
// as before. So it does when the environment has SESSIONWHEEL_HUGEPAGES=off
// when a manager is made: for comparison, or where huge pages misbehave.

const hugePage = 2 << 20

func hugePagesWanted() bool { return os.Getenv("SESSIONWHEEL_HUGEPAGES") != "off" }

// An arena hands out zeroed, 64-byte aligned blocks carved in order from
// its regions. It is shared by the shards of a store, hence its lock,
// which is taken only when a shard needs a new chunk or index.
type arena struct {
	mu       sync.Mutex
	base     unsafe.Pointer // the current region
	cur, end uintptr        // offsets: what is left of it
	regions  []region       // everything mapped, for release
	counted  int64          // bytes mapped and not given back (Stats.OffHeapBytes)

	// A region mapped and faulted in ahead of need (see prepare), the next
	// current region if it is large enough; its mapping, nil if none.
	spare     region
	released  bool        // release has run
	wantSpare atomic.Bool // alloc has taken the spare, or found none
	preparing atomic.Bool // a prepare is under way
}

// spareSize is the size of a spare region: one huge page, as large as
// most blocks (chunks, wheel nodes, indexes up to 512k entries).
const spareSize = hugePage

// prepare maps and faults in a spare region when alloc wants one. The
// first write to a huge page costs the kernel 0.1-6 ms on these machines
// (it zeroes 2 MiB, and may first compact memory to find them), and alloc
// runs with a shard locked: a create calls prepare before it locks its
// shard, so that the fault is paid with no lock held, by the one create
// that calls it, and the touches of that shard do not wait for it.
func (a *arena) prepare() {
	if !offHeap || !a.wantSpare.Load() || !a.preparing.CompareAndSwap(false, true) {
		return
	}
	defer a.preparing.Store(false)
	base, mapping := mapRegion(spareSize)
	if base == nil {
		return
	}
	for off := uintptr(0); off < spareSize; off += 4096 {
		*(*byte)(unsafe.Add(base, off)) = 0 // the write faults the page in
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.spare.mapping != nil || a.released {
		unmapAll(mapping) // another spare is there already, or no use for one
		return
	}
	a.spare = region{base: base, size: spareSize, mapping: mapping}
	a.count(spareSize)
	a.wantSpare.Store(false)
}

// count adds d to what the arena holds off the heap. The caller holds a.mu.
func (a *arena) count(d int64) { a.counted += d }

// held returns what the arena holds off the heap.
func (a *arena) held() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.counted
}

type region struct {
	base      unsafe.Pointer
	size      uintptr // what is counted in arena.counted from base
	discarded uintptr // bytes within size given back by free
	mapping   []byte  // the whole mapping, for unmapAll
}

// alloc returns size bytes (a multiple of 64), aligned to align (a power
// of two from 64 up to the page size).
func (a *arena) alloc(size, align int) unsafe.Pointer {
	if a == nil || !offHeap {
		return unsafe.Pointer(unsafe.SliceData(make([]uint64, (size+7)/8)))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	// Regions are aligned to hugePage, so aligning the offset aligns the
	// address.
	off := (a.cur + uintptr(align) - 1) &^ (uintptr(align) - 1)
	if a.base == nil || off+uintptr(size) > a.end {
		a.retireTail()
		a.wantSpare.Store(true)
		if a.spare.mapping != nil && uintptr(size) <= a.spare.size {
			// Mapped, faulted in and counted by prepare.
			a.regions = append(a.regions, a.spare)
			a.base, off, a.end = a.spare.base, 0, a.spare.size
			a.spare = region{}
		} else {
			n := (uintptr(size) + hugePage - 1) &^ (hugePage - 1)
			base, mapping := mapRegion(n)
			if base == nil { // the mapping failed: fall back to the heap
				return unsafe.Pointer(unsafe.SliceData(make([]uint64, (size+7)/8)))
			}
			a.regions = append(a.regions, region{base: base, size: n, mapping: mapping})
			a.count(int64(n))
			a.base, off, a.end = base, 0, n
		}
	}
	a.cur = off + uintptr(size)
	return unsafe.Add(a.base, off)
}

// retireTail stops carving from the current region. The whole huge pages
// at its end that no block reaches were never touched, so they take no
// memory; they stay mapped (unmapping part of a mapping would let the
// runtime map something of its own into the hole, which unmapAll would
// then destroy) and are no longer counted. The rest of the last huge page
// in use stays resident and counted: for indexes, whose sizes leave much of
// a huge page unused at the end of a region, 5-6 bytes a session at 10M
// sessions. Giving it back would split the huge page, which holds the end
// of a live index, into small pages.
func (a *arena) retireTail() {
	if a.base == nil {
		return
	}
	from := (a.cur + hugePage - 1) &^ (hugePage - 1)
	if a.end > from {
		a.count(-int64(a.end - from))
		a.regions[len(a.regions)-1].size = from
	}
	a.base, a.cur, a.end = nil, 0, 0
}

// free gives back the whole pages inside a block that alloc returned, when
// it is off the heap: the address range stays reserved, the memory does not.
func (a *arena) free(p unsafe.Pointer, size int) {
	if a == nil || !offHeap {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range a.regions {
		r := &a.regions[i]
		if b := uintptr(r.base); uintptr(p) < b || uintptr(p) >= b+r.size {
			continue
		}
		const page = 4096
		from := (uintptr(p) + page - 1) &^ (page - 1)
		to := (uintptr(p) + uintptr(size)) &^ (page - 1)
		if to > from {
			discardRange(unsafe.Add(p, from-uintptr(p)), to-from)
			a.count(-int64(to - from))
			r.discarded += to - from
		}
		return
	}
}

// release unmaps everything; nothing may use the arena's blocks afterwards.
func (a *arena) release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.retireTail()
	for _, r := range a.regions {
		unmapAll(r.mapping)
		a.count(-int64(r.size - r.discarded))
	}
	a.regions = nil
	if a.spare.mapping != nil {
		unmapAll(a.spare.mapping)
		a.count(-int64(a.spare.size))
		a.spare = region{}
	}
	a.released = true
}

// bytes is alloc for the wheel, which takes its node chunks as bytes.
func (a *arena) bytes(size int) []byte {
	return unsafe.Slice((*byte)(a.alloc(size, 64)), size)
}

// allocSlice returns a zeroed []T of length n from a.
func allocSlice[T any](a *arena, n, align int) []T {
	var t T
	size := (n*int(unsafe.Sizeof(t)) + 63) &^ 63
	return unsafe.Slice((*T)(a.alloc(size, align)), n)
}

// freeSlice gives back a slice that allocSlice returned.
func freeSlice[T any](a *arena, s []T) {
	if len(s) == 0 {
		return
	}
	var t T
	a.free(unsafe.Pointer(unsafe.SliceData(s)), len(s)*int(unsafe.Sizeof(t)))
}

// storeMemory is a store's two arenas: one for what lives as long as the
// store (chunks), one for indexes, which are freed as they grow, so that
// freeing them never splits a huge page that holds records.
type storeMemory struct {
	chunks, index arena
}

// held returns what the store holds off the heap.
func (m *storeMemory) held() int64 {
	if m == nil {
		return 0
	}
	return m.chunks.held() + m.index.held()
}

// prepare readies both arenas' spare regions if they want one.
func (m *storeMemory) prepare() {
	if m != nil {
		m.chunks.prepare()
		m.index.prepare()
	}
}

func (m *storeMemory) release() {
	m.chunks.release()
	m.index.release()
}
