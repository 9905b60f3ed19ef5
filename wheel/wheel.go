package wheel

import (
	"math"
	"math/bits"
	"unsafe"
)

const (
	levelBits   = 6
	levelSlots  = 1 << levelBits // buckets per level
	levels      = 11             // ceil(64 / levelBits): the top level covers every int64
	pendingB    = levels * levelSlots
	bucketCount = pendingB + 1 // the last bucket is the pending list

	// Link values at or above sentinelBase name bucket heads; below it, a link
	// value v names handle v-1, so that the zero link means "not filed".
	sentinelBase = math.MaxUint32 - 1023

	chunkBits = 10
	chunkLen  = 1 << chunkBits
	chunkMask = chunkLen - 1
)

// MaxHandle is the largest handle a Wheel accepts.
const MaxHandle = sentinelBase - 2

type links struct{ next, prev uint32 }

type node struct {
	links
	when int64
}

// A Wheel files handles under deadlines and reports them when time reaches
// them. The zero value is an empty wheel at tick 0, ready to use.
//
// A Wheel is not safe for concurrent use: its owner serialises access.
type Wheel struct {
	now      int64
	n        int
	occupied [levels]uint64 // bit s of word l: bucket (l, s) is not empty
	pending  bool           // the pending list is not empty
	visits   uint64

	// heads holds the sentinels of the bucket lists; a head's links are only
	// meaningful while its bucket is marked occupied, which is what lets the
	// zero Wheel work without initialisation.
	heads  [bucketCount]links
	chunks [][]node
	alloc  func(size int) []byte // see UseMemory; nil: make
}

// UseMemory makes the wheel take the storage for its nodes from alloc,
// in chunks of a few KiB, instead of the Go heap: a caller with millions
// of handles can put them on huge pages. alloc must return zeroed memory,
// aligned to 8 bytes, that stays valid while the wheel is in use; the wheel
// never gives it back. Nodes hold no pointers. Call it before the first Add.
func (w *Wheel) UseMemory(alloc func(size int) []byte) { w.alloc = alloc }

// New returns an empty wheel whose current tick is now.
func New(now int64) *Wheel { return &Wheel{now: now} }

// key maps a tick to an unsigned key that sorts the same way, so the bit
// arithmetic below works for negative ticks too.
func key(t int64) uint64 { return uint64(t) ^ (1 << 63) }

// Now returns the wheel's current tick: the latest time passed to Poll, or
// the time given to New.
func (w *Wheel) Now() int64 { return w.now }

// Len returns the number of handles filed.
func (w *Wheel) Len() int { return w.n }

// Visits returns the number of buckets the wheel has emptied since it was
// made: the work Poll has done apart from reporting and re-filing handles. It
// grows with the number of occupied buckets passed, not with the ticks passed.
func (w *Wheel) Visits() uint64 { return w.visits }

// Contains reports whether h is filed.
func (w *Wheel) Contains(h uint32) bool {
	nd := w.lookup(h)
	return nd != nil && nd.next != 0
}

// When returns the deadline h is filed under, and whether it is filed.
func (w *Wheel) When(h uint32) (int64, bool) {
	nd := w.lookup(h)
	if nd == nil || nd.next == 0 {
		return 0, false
	}
	return nd.when, true
}

// Add files h under the deadline when; if h is already filed, it is moved.
// A deadline at or before the current tick is reported by the next Poll.
// Add panics if h is greater than MaxHandle, like an out-of-range slice index.
func (w *Wheel) Add(h uint32, when int64) {
	if h > MaxHandle {
		panic("wheel: handle out of range")
	}
	nd := w.node(h)
	if nd.next != 0 {
		w.unlink(nd)
		w.n--
	}
	nd.when = when
	w.n++
	w.file(h, nd)
}

// Remove takes h out of the wheel and reports whether it was filed.
func (w *Wheel) Remove(h uint32) bool {
	nd := w.lookup(h)
	if nd == nil || nd.next == 0 {
		return false
	}
	w.unlink(nd)
	w.n--
	return true
}

// Next returns a tick at or before the earliest deadline filed, such that
// Poll reports nothing for any earlier time; ok is false if the wheel is
// empty. A driver sleeps until Next and then polls. The tick may come before
// the earliest deadline (it is the start of the earliest occupied bucket), in
// which case that Poll only cascades handles and Next moves on.
func (w *Wheel) Next() (tick int64, ok bool) {
	if w.pending {
		return w.now, true
	}
	l, s, ok := w.nextBucket()
	if !ok {
		return 0, false
	}
	return w.bucketStart(l, s), true
}

// Poll advances the wheel's time to now and returns one handle whose
// deadline is at or before now, removing it from the wheel; ok is false when
// no such handle is left. Call it until ok is false to collect everything
// due; between calls the caller may Add and Remove freely (a handle added
// with a deadline at or before now is returned by a later call). Each call
// costs O(levels) amortised: a handle is cascaded at most once per level.
// Time never moves backwards: a now before the current tick is taken as the
// current tick.
func (w *Wheel) Poll(now int64) (h uint32, when int64, ok bool) {
	if now < w.now {
		now = w.now
	}
	for {
		if w.pending {
			first := w.heads[pendingB].next
			nd := w.linksNode(first)
			w.unlink(nd)
			if nd.when <= now {
				w.n--
				return first - 1, nd.when, true
			}
			// Not due yet: it came down from a higher bucket (or was added
			// while the wheel lagged); re-file it below the current tick.
			w.file(first-1, nd)
			continue
		}
		l, s, found := w.nextBucket()
		if !found {
			break
		}
		start := w.bucketStart(l, s)
		if start > now {
			break
		}
		// Everything filed is at or after start, so time can move there
		// before the bucket's handles are sorted out.
		w.now = start
		w.splicePending(l*levelSlots + s)
		w.visits++
	}
	if now > w.now {
		w.now = now
	}
	return 0, 0, false
}

// file puts nd (for handle h) into the bucket its deadline belongs to
// relative to the current tick.
func (w *Wheel) file(h uint32, nd *node) {
	now, when := key(w.now), key(nd.when)
	if when <= now {
		w.push(pendingB, h, nd)
		return
	}
	l := (bits.Len64((now^when)|(levelSlots-1)) - 1) / levelBits
	s := int(when>>(uint(l)*levelBits)) & (levelSlots - 1)
	w.push(l*levelSlots+s, h, nd)
}

// nextBucket finds the earliest occupied bucket. Buckets of a lower level
// always start before those of any higher level (a level's buckets lie inside
// the current bucket of the level above), so the first level with an
// occupied bucket after the current one wins.
func (w *Wheel) nextBucket() (level, slot int, ok bool) {
	now := key(w.now)
	for l := range levels {
		occ := w.occupied[l]
		if occ == 0 {
			continue
		}
		cur := uint(now>>(uint(l)*levelBits)) & (levelSlots - 1)
		// Buckets at or before the current one are empty by construction;
		// the mask is only a guard.
		occ &^= (2 << cur) - 1
		if occ == 0 {
			continue
		}
		return l, bits.TrailingZeros64(occ), true
	}
	return 0, 0, false
}

// bucketStart returns the first tick of bucket (l, s) relative to now.
func (w *Wheel) bucketStart(l, s int) int64 {
	shift := uint(l) * levelBits
	block := key(w.now) &^ (uint64(1)<<(shift+levelBits) - 1)
	return int64((block | uint64(s)<<shift) ^ (1 << 63))
}

func (w *Wheel) occupiedBit(b int) bool {
	if b == pendingB {
		return w.pending
	}
	return w.occupied[b>>levelBits]&(1<<(b&(levelSlots-1))) != 0
}

func (w *Wheel) setOccupied(b int, on bool) {
	if b == pendingB {
		w.pending = on
		return
	}
	if on {
		w.occupied[b>>levelBits] |= 1 << (b & (levelSlots - 1))
	} else {
		w.occupied[b>>levelBits] &^= 1 << (b & (levelSlots - 1))
	}
}

// push appends h to the tail of bucket b, so that handles filed together are
// reported in the order they were filed.
func (w *Wheel) push(b int, h uint32, nd *node) {
	self, head := uint32(sentinelBase+b), &w.heads[b]
	link := h + 1
	if !w.occupiedBit(b) {
		head.next, head.prev = link, link
		nd.next, nd.prev = self, self
		w.setOccupied(b, true)
		return
	}
	last := head.prev
	nd.prev, nd.next = last, self
	w.linksOf(last).next = link
	head.prev = link
}

// unlink takes nd out of its list, marking the bucket empty if it was the
// last, and leaves nd unfiled.
func (w *Wheel) unlink(nd *node) {
	next, prev := nd.next, nd.prev
	if next == prev && next >= sentinelBase {
		w.setOccupied(int(next-sentinelBase), false)
	} else {
		w.linksOf(prev).next = next
		w.linksOf(next).prev = prev
	}
	nd.next, nd.prev = 0, 0
}

// splicePending moves the whole of bucket b to the end of the pending list
// in O(1).
func (w *Wheel) splicePending(b int) {
	src := w.heads[b]
	w.setOccupied(b, false)
	pend := uint32(sentinelBase + pendingB)
	ph := &w.heads[pendingB]
	if !w.pending {
		ph.next, ph.prev = src.next, src.prev
		w.linksOf(src.next).prev = pend
		w.linksOf(src.prev).next = pend
		w.pending = true
		return
	}
	w.linksOf(ph.prev).next = src.next
	w.linksOf(src.next).prev = ph.prev
	w.linksOf(src.prev).next = pend
	ph.prev = src.prev
}

// linksOf returns the links behind a link value: a bucket head or a node.
func (w *Wheel) linksOf(v uint32) *links {
	if v >= sentinelBase {
		return &w.heads[v-sentinelBase]
	}
	return &w.linksNode(v).links
}

func (w *Wheel) linksNode(v uint32) *node {
	h := v - 1
	return &w.chunks[h>>chunkBits][h&chunkMask]
}

// lookup returns h's node, or nil if h was never filed.
func (w *Wheel) lookup(h uint32) *node {
	c := int(h >> chunkBits)
	if c >= len(w.chunks) || w.chunks[c] == nil {
		return nil
	}
	return &w.chunks[c][h&chunkMask]
}

// node returns h's node, growing the storage to hold it.
func (w *Wheel) node(h uint32) *node {
	c := int(h >> chunkBits)
	if c >= len(w.chunks) {
		w.chunks = append(w.chunks, make([][]node, c+1-len(w.chunks))...)
	}
	if w.chunks[c] == nil {
		if w.alloc != nil {
			b := w.alloc(chunkLen * int(unsafe.Sizeof(node{})))
			w.chunks[c] = unsafe.Slice((*node)(unsafe.Pointer(unsafe.SliceData(b))), chunkLen)
		} else {
			w.chunks[c] = make([]node, chunkLen)
		}
	}
	return &w.chunks[c][h&chunkMask]
}

// First returns a handle from the earliest occupied bucket without moving
// time: the handle due first if that bucket is at level 0, otherwise one whose
// deadline is within that bucket's span. Callers use it to pick a handle
// that is due soon, such as a victim for eviction.
func (w *Wheel) First() (h uint32, when int64, ok bool) {
	b := pendingB
	if !w.pending {
		l, s, found := w.nextBucket()
		if !found {
			return 0, 0, false
		}
		b = l*levelSlots + s
	}
	v := w.heads[b].next
	return v - 1, w.linksNode(v).when, true
}
