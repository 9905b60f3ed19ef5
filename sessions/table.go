package sessions

import (
	"math"
	"math/bits"
	"runtime"
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
// this one costs 4 bytes per entry at a load factor kept between 0.425 and
// 0.85 (4.7-9.4 bytes per session; see idxGrowth). A probe that misses
// crosses about 23 entries at the highest load, two cache lines, and the
// tags keep it from reading records. It uses linear probing (IDs are
// random, so their first 8 bytes are the hash), an 8-bit tag from another
// byte of the ID so that most probes that miss never read a record, and
// backward-shift deletion so there are no tombstones.
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

	count  int    // entries in the index (both, while it grows)
	used   uint32 // slots handed out so far
	free   uint32 // first free slot + 1; 0: none
	num    uint16 // this shard's index in memStore.shards
	wheel  wheel.Wheel
	extras map[uint32]*extra

	// While the index grows (see idxGrowth): the old index, a bit per
	// slot below limit whose entry has moved, and the next slot to move.
	old           []uint32
	moved         []uint64
	limit, cursor uint32

	mem *storeMemory // where chunks and large indexes come from; nil: the heap

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
	// Spin a while before sleeping: the sweep holds a shard for a few
	// microseconds and then leaves it to a waiter, but Go's mutex spins
	// for less than one such hold at 10M sessions before it sleeps, and a
	// sleeper is woken onto the run queue of the sweep's P, where it waits
	// until the sweep yields or another thread wakes to steal it. Measured
	// while half of 10M end (BenchmarkTouchDuringMassEnding, 2 runs each):
	// touches over 20 µs 1,517-2,075 -> 557-699, the sum of lock waits 2-5
	// ms -> 0.04-0.8 ms. TryLock only reads the lock while it is held.
	for i := range lockSpins {
		if i < lockSpins/2 {
			for range 64 { // about 100-200 ns
				spinPause()
			}
		} else {
			runtime.Gosched()
		}
		if s.mu.TryLock() {
			s.waiting.Add(-1)
			return
		}
	}
	s.mu.Lock()
	s.waiting.Add(-1)
}

// lockSpins bounds the tries of lockTouch before it sleeps: a few tens of
// microseconds, several of the sweep's holds.
const lockSpins = 128

// spinPause is a call the compiler cannot remove: lockTouch's short wait
// between two tries.
//
//go:noinline
func spinPause() {}

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

// find returns the slot of id and its position in the index: in the
// current index, or, while the index grows, at len(idx)+p for position p
// of the old one (see grow).
func (s *shard) find(id ID) (slot uint32, pos int, ok bool) {
	if slot, pos, ok = s.findIn(s.idx, id, false); ok || s.old == nil {
		return slot, pos, ok
	}
	// The old index may still name sessions whose entries have moved to
	// the new one and that have ended since: only a live one counts.
	slot, pos, ok = s.findIn(s.old, id, true)
	return slot, len(s.idx) + pos, ok
}

// findIn looks id up in the index tbl; with live, only a live record counts.
func (s *shard) findIn(tbl []uint32, id ID, live bool) (slot uint32, pos int, ok bool) {
	n := len(tbl)
	if n == 0 {
		return 0, 0, false
	}
	tag := id.tag()
	for i := home(id.hash(), n); ; {
		e := tbl[i]
		if e == 0 {
			return 0, 0, false
		}
		if e>>idxSlotBits == tag {
			slot := e&idxSlotMask - 1
			if r := s.rec(slot); r.id == id && (!live || r.gen&stateMask == stateLive) {
				return slot, i, true
			}
		}
		if i++; i == n {
			i = 0
		}
	}
}

// The index doubles when an entry would push its load past 0.85, and does
// so incrementally, as Redis's dict rehashes (dict.c, _dictRehashStep), so
// that no insert holds the shard's lock for long: a rebuild of the whole
// index at once held it 1.4-3.8 ms at 10M sessions. Doubling places each
// entry about once more over the index's growth; growing by a quarter, as
// it did, placed it four times more (18-20% of a create at 10M), for a
// load between 0.68 and 0.85 instead of 0.425 and 0.85 (1.2-4.7 bytes per
// session less). Growing by a quarter incrementally was slower still: the
// moves, spread over the creates, no longer find the new index in cache.
// While it grows, the shard has two indexes: old, which new entries no
// longer enter, and idx, the new one. Every insert first moves the entries
// of a few more slots from old to idx, walking the arena in slot order up
// to the slots used when growth began (reading records in order is
// sequential, where walking the old index would fetch one random record
// per entry to learn its hash), so that the move is done before idx is
// full. moved has a bit per slot below that bound, set when the slot's
// entry is in idx; a slot at or above it is always in idx. Entries left
// behind in old are not removed: old is dropped whole when the walk ends,
// and until then find looks in old only after idx, and accepts from it only
// a live record with the ID it looks for: a left-behind entry's session is
// in idx, found first, or has ended, and its slot may hold another session
// now, whose ID differs.
const idxGrowth = 2

// index adds id -> slot to the index; the record must already be live.
func (s *shard) index(id ID, slot uint32) {
	// The record is live already: marked first, so the walk does not
	// place it as well.
	s.markMoved(slot)
	if s.old != nil {
		s.migrate()
	}
	if (s.count+1)*20 > len(s.idx)*17 {
		if s.old != nil {
			s.migrateAll() // migrate's pace keeps this from happening
		}
		s.grow()
		s.markMoved(slot)
	}
	place(s.idx, id, slot)
	s.count++
}

// markMoved notes, while the index grows, that the entry of slot is in the
// new index.
func (s *shard) markMoved(slot uint32) {
	if s.old != nil && slot < s.limit {
		s.moved[slot/64] |= 1 << (slot % 64)
	}
}

// grow starts moving the index to one idxGrowth times as long.
func (s *shard) grow() {
	s.old = s.idx
	s.idx = s.newIndex(max(16, len(s.old)*idxGrowth))
	s.limit, s.cursor = s.used, 0
	s.moved = make([]uint64, (s.limit+63)/64)
	if len(s.old) == 0 {
		s.endMigration()
	}
}

// migrate moves the entries of the next few slots to the new index: enough
// that the walk ends before the new index holds 0.85 of its length, and at
// least idxStep, so that it ends soon (lookups of sessions not yet moved
// probe both indexes).
func (s *shard) migrate() {
	const idxStep = 32
	room := len(s.idx)*17/20 - s.count // inserts left before idx is full
	left := int(s.limit - s.cursor)
	step := idxStep
	if room > 0 {
		step = max(step, (left+room-1)/room)
	} else {
		step = left
	}
	s.migrateTo(s.cursor + uint32(min(step, left)))
}

func (s *shard) migrateAll() { s.migrateTo(s.limit) }

func (s *shard) migrateTo(to uint32) {
	for sl := s.cursor; sl < to; sl++ {
		if s.moved[sl/64]&(1<<(sl%64)) != 0 {
			continue
		}
		if r := s.rec(sl); r.gen&stateMask == stateLive {
			place(s.idx, r.id, sl)
			s.markMoved(sl)
		}
	}
	s.cursor = to
	if to == s.limit {
		s.endMigration()
	}
}

func (s *shard) endMigration() {
	if s.mem != nil {
		freeSlice(&s.mem.index, s.old)
	}
	s.old, s.moved, s.limit, s.cursor = nil, nil, 0, 0
}

// inOld reports whether the entry of the session in slot is in the old
// index (which only holds entries while the index grows).
func (s *shard) inOld(slot uint32) bool {
	return s.old != nil && slot < s.limit && s.moved[slot/64]&(1<<(slot%64)) == 0
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

func place(tbl []uint32, id ID, slot uint32) {
	n := len(tbl)
	i := home(id.hash(), n)
	for tbl[i] != 0 {
		if i++; i == n {
			i = 0
		}
	}
	tbl[i] = id.tag()<<idxSlotBits | (slot + 1)
}

// unindexSlot removes the entry of id, which names slot, from the index. pos
// is where the caller found it, or -1; a position that no longer holds the
// entry (the index was rebuilt since) is not trusted, and an id that is not
// in the index is left alone: removing "something" would drop another
// session's entry.
func (s *shard) unindexSlot(id ID, slot uint32, pos int) {
	tbl, base := s.idx, 0
	if s.inOld(slot) {
		tbl, base = s.old, len(s.idx)
	}
	if p := pos - base; pos < 0 || p < 0 || p >= len(tbl) || tbl[p]&idxSlotMask != slot+1 {
		if p = entryOf(tbl, id, slot); p < 0 {
			return
		}
		pos = base + p
	}
	s.unindex(pos)
}

// entryOf returns the position in tbl of the entry of id that names slot,
// or -1.
func entryOf(tbl []uint32, id ID, slot uint32) int {
	n := len(tbl)
	if n == 0 {
		return -1
	}
	want := id.tag()<<idxSlotBits | (slot + 1)
	for i := home(id.hash(), n); ; {
		switch tbl[i] {
		case 0:
			return -1
		case want:
			return i
		}
		if i++; i == n {
			i = 0
		}
	}
}

// unindex removes the entry at pos, as find returns it.
func (s *shard) unindex(pos int) {
	if pos >= len(s.idx) {
		unindexIn(s, s.old, pos-len(s.idx))
	} else {
		unindexIn(s, s.idx, pos)
	}
	s.count--
}

// unindexIn removes the entry at pos of tbl, shifting later entries of its
// cluster back into the hole when that keeps them reachable from their home
// (Knuth's Algorithm R), so that probes never need tombstones. In the old
// index, entries left behind (see idxGrowth) may have records that name
// another session now, whose home is not theirs: whether they move or not
// concerns only them, as each entry is judged by its own home.
func unindexIn(s *shard, tbl []uint32, pos int) {
	n := len(tbl)
	hole := pos
	for j := pos; ; {
		if j++; j == n {
			j = 0
		}
		e := tbl[j]
		if e == 0 {
			break
		}
		k := home(s.rec(e&idxSlotMask-1).id.hash(), n)
		// The entry at j may fill the hole unless its home lies cyclically
		// in (hole, j].
		if (hole <= j && (k <= hole || k > j)) || (hole > j && k <= hole && k > j) {
			tbl[hole] = e
			hole = j
		}
	}
	tbl[hole] = 0
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
