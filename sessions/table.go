package sessions

import (
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/sessionwheel/sessionwheel/wheel"
)

// A record is one session's slot in a shard's arena. It holds no pointers,
// so the garbage collector never looks inside the arena however many
// sessions it holds; values and callbacks live in the shard's extras map,
// and only for the sessions that have them.
type record struct {
	id     ID
	access int64  // tick of the last touch (timemodel.go); for a free slot, the next free slot + 1
	idle   uint32 // the session's own idle timeout in ticks; 0: the manager's
	gen    uint32 // generation<<2 | state
}

// A record is 32 bytes, two to a cache line, and holds what a touch reads.
// The time of creation, which only the absolute timeout, CreatedAt and
// endings need, lives in a parallel array (shard.births).

// Slot states, kept in the low bits of record.gen. A slot goes
// free -> live -> (ending ->) free; the generation grows on each reuse, so a
// stale handle never matches the slot's next occupant.
const (
	stateFree   = 0
	stateLive   = 1
	stateEnding = 2 // ended, callbacks not yet run: values still readable
	stateMask   = 3
	genStep     = 4
)

// An extra holds what only some sessions have.
type extra struct {
	values map[string]any
	notify []func(Session, Reason)
	own    ownership // the session's owner, if any (owners.go)
}

const (
	recChunkBits = 8 // records come in chunks of 256 (8 KiB): they never move
	recChunkLen  = 1 << recChunkBits

	// Index entries are tag<<24 | (slot+1); zero is an empty entry.
	idxSlotBits = 24
	idxSlotMask = 1<<idxSlotBits - 1
)

// A shard is an independently locked part of the table: an open-addressing
// index from ID to slot, an arena of records, and a timing wheel over the
// slots. Everything in it is guarded by mu except due.
//
// The index is not a Go map: map[ID]uint32 costs 30-48 bytes per session;
// this one costs 4 bytes per entry at a load factor kept between 0.68 and
// 0.85 (4.7-5.9 bytes per session). A probe that misses crosses about 23
// entries at the highest load, two cache lines, and the tags keep it from
// reading records. It uses linear probing (IDs are random, so
// their first 8 bytes are the hash), an 8-bit tag from another byte of the ID
// so that most probes that miss never read a record, and backward-shift
// deletion so there are no tombstones.
type shard struct {
	shardData
	// Round the size up to whole cache lines, so that every shard starts
	// on one (the array is large enough to be page-aligned) and its first
	// line, which a touch writes, is shared with no other shard.
	_ [(64 - unsafe.Sizeof(shardData{})%64) % 64]byte
}

type shardData struct { // see shard
	// What a touch needs comes first, on one cache line: the lock, the
	// index, the arena and the first counter.
	mu     sync.Mutex
	idx    []uint32
	chunks [][]record
	stats  shardStats
	births [][]int64 // time of creation, chunked like chunks

	count  int
	used   uint32 // slots handed out so far
	free   uint32 // first free slot + 1; 0: none
	num    uint16 // this shard's index in memStore.shards
	wheel  wheel.Wheel
	extras map[uint32]*extra
	mem    *storeMemory // where chunks and large indexes come from; nil: the heap

	// Callbacks shared by sessions (notes.go): per slot, the number of its
	// note, chunked like chunks (a chunk is made when first needed); the
	// notes; their numbers by key; the numbers free for reuse.
	noteOf   [][]uint32
	notes    []note
	noteNums map[uintptr]uint32
	freeNums []uint32

	// due is a tick at or before which the driver must look at this shard:
	// the wheel's next tick, or earlier. Written under mu, read by the ticker
	// without it.
	due atomic.Int64

	// waiting counts the touches waiting for mu (lockTouch); the sweep
	// reads it between holds to let them in.
	waiting atomic.Int32
}

// lockTouch locks s for a touch (or a create: what requests wait for). One
// that finds the lock taken says so in waiting while it waits, so that the
// sweep, which holds the lock in short holds, leaves the shard to it
// instead of taking it again at once (Go's mutex lets the running goroutine
// re-take a lock before a waiter it woke has run). The uncontended path is
// the same single CAS as Lock.
func (s *shard) lockTouch() {
	if s.mu.TryLock() {
		return
	}
	s.waiting.Add(1)
	s.mu.Lock()
	s.waiting.Add(-1)
}

func (s *shard) rec(slot uint32) *record {
	return &s.chunks[slot>>recChunkBits][slot&(recChunkLen-1)]
}

// born returns where the time the session in slot was created is kept.
func (s *shard) born(slot uint32) *int64 {
	return &s.births[slot>>recChunkBits][slot&(recChunkLen-1)]
}

// home maps a hash onto [0, n) without division (Lemire's fast range).
func home(h uint64, n int) int {
	hi, _ := bits.Mul64(h, uint64(n))
	return int(hi)
}

// find returns the slot of id and its position in the index.
func (s *shard) find(id ID) (slot uint32, pos int, ok bool) {
	n := len(s.idx)
	if n == 0 {
		return 0, 0, false
	}
	tag := id.tag()
	for i := home(id.hash(), n); ; {
		e := s.idx[i]
		if e == 0 {
			return 0, 0, false
		}
		if e>>idxSlotBits == tag {
			slot := e&idxSlotMask - 1
			if s.rec(slot).id == id {
				return slot, i, true
			}
		}
		if i++; i == n {
			i = 0
		}
	}
}

// index adds id -> slot to the index; the record must already be live. When
// the entry would push the load past 0.85, the index grows by a quarter instead
// and is rebuilt from the arena, which includes the new record: reading the
// records in slot order is sequential, where walking the old index would
// fetch one random record per entry to learn its hash.
func (s *shard) index(id ID, slot uint32) {
	if (s.count+1)*20 <= len(s.idx)*17 {
		s.place(id, slot)
		s.count++
		return
	}
	old := s.idx
	s.idx = s.newIndex(max(16, len(s.idx)*5/4))
	s.count = 0
	for sl := range s.used {
		if r := s.rec(sl); r.gen&stateMask == stateLive {
			s.place(r.id, sl)
			s.count++
		}
	}
	if s.mem != nil {
		freeSlice(&s.mem.index, old)
	}
}

// bigIndex is the length from which an index is allocated off the heap,
// page-aligned, so that it can be given back when it is replaced.
const bigIndex = 16 << 10

func (s *shard) newIndex(n int) []uint32 {
	if s.mem == nil || n < bigIndex {
		return make([]uint32, n)
	}
	return allocSlice[uint32](&s.mem.index, n, 4096)
}

func (s *shard) place(id ID, slot uint32) {
	n := len(s.idx)
	i := home(id.hash(), n)
	for s.idx[i] != 0 {
		if i++; i == n {
			i = 0
		}
	}
	s.idx[i] = id.tag()<<idxSlotBits | (slot + 1)
}

// unindexSlot removes the entry of id, which names slot, from the index. pos
// is where the caller found it, or -1; a position that no longer holds the
// entry (the index was rebuilt since) is not trusted, and an id that is not
// in the index is left alone: removing "something" would drop another
// session's entry.
func (s *shard) unindexSlot(id ID, slot uint32, pos int) {
	if pos < 0 || pos >= len(s.idx) || s.idx[pos]&idxSlotMask != slot+1 {
		var ok bool
		if _, pos, ok = s.find(id); !ok {
			return
		}
	}
	s.unindex(pos)
}

// unindex removes the entry at pos, shifting later entries of its cluster
// back into the hole when that keeps them reachable from their home (Knuth's
// Algorithm R), so that probes never need tombstones.
func (s *shard) unindex(pos int) {
	n := len(s.idx)
	hole := pos
	for j := pos; ; {
		if j++; j == n {
			j = 0
		}
		e := s.idx[j]
		if e == 0 {
			break
		}
		k := home(s.rec(e&idxSlotMask-1).id.hash(), n)
		// The entry at j may fill the hole unless its home lies cyclically
		// in (hole, j].
		if (hole <= j && (k <= hole || k > j)) || (hole > j && k <= hole && k > j) {
			s.idx[hole] = e
			hole = j
		}
	}
	s.idx[hole] = 0
	s.count--
}

// alloc returns a free slot, or false if the shard holds MaxShardSessions.
func (s *shard) alloc() (uint32, bool) {
	if s.free != 0 {
		slot := s.free - 1
		s.free = uint32(s.rec(slot).access)
		return slot, true
	}
	if s.used >= MaxShardSessions {
		return 0, false
	}
	slot := s.used
	if int(slot>>recChunkBits) == len(s.chunks) {
		var a *arena
		if s.mem != nil {
			a = &s.mem.chunks
		}
		s.chunks = append(s.chunks, allocSlice[record](a, recChunkLen, 64))
		s.births = append(s.births, allocSlice[int64](a, recChunkLen, 64))
	}
	s.used++
	return slot, true
}

// release frees a slot that is out of the index and the wheel.
func (s *shard) release(slot uint32) {
	r := s.rec(slot)
	*r = record{access: int64(s.free), gen: r.gen &^ stateMask}
	s.free = slot + 1
	if len(s.noteOf) != 0 {
		s.setNote(slot, 0)
	}
	if len(s.extras) != 0 {
		delete(s.extras, slot)
	}
}

// extra returns the slot's extra, making one if asked.
func (s *shard) extra(slot uint32, create bool) *extra {
	ex := s.extras[slot]
	if ex == nil && create {
		if s.extras == nil {
			s.extras = map[uint32]*extra{}
		}
		ex = &extra{}
		s.extras[slot] = ex
	}
	return ex
}

// settle sets due from the wheel after the driver has emptied what was due.
func (s *shard) settle() {
	next, ok := s.wheel.Next()
	if !ok {
		next = math.MaxInt64
	}
	s.due.Store(next)
}
