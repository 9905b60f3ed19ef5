package sessions

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// sweepHold bounds the wheel entries the sweep handles per hold of a
	// shard's lock: about a microsecond of work (2-3 µs at 10M sessions,
	// where each entry is a cache miss), which is about as long as a
	// goroutine that finds the lock taken spins before it parks. A touch
	// that waits behind a hold then mostly gets the lock without sleeping,
	// and waits for one hold at most: the sweep then leaves the shard to it.
	sweepHold = 8

	// sweepBatch is about how many endings the sweep hands to the workers
	// at a time, gathered over several holds and shards.
	sweepBatch = 512
)

// memStore is the in-memory store: a table split into shards (table.go),
// each with its own lock, index, arena and timing wheel. Every method locks
// the shards it needs, reads the clock under the lock and decides with the
// time model.
type memStore struct {
	tm     *timeModel
	shards []shard
	mask   uint32
	keep   bool             // Config.OnExpire is set: every ending has a callback to run
	closed atomic.Bool      // shutdown has begun: create and renew refuse
	own    ownerIndex       // owners and their sessions (owners.go)
	filed  func(tick int64) // told each time a session is filed under a tick

	mem                *storeMemory // the table's memory off the heap; nil: on the heap
	lateness, lifetime *histogram
	maxHold            *maxDuration
	batches            sync.Pool // of *[]ending with room for sweepBatch
}

func newMemStore(tm *timeModel, shards int, keep bool, filed func(int64), lateness, lifetime *histogram, maxHold *maxDuration) *memStore {
	st := &memStore{
		tm:       tm,
		shards:   make([]shard, shards),
		mask:     uint32(shards - 1),
		keep:     keep,
		filed:    filed,
		lateness: lateness,
		lifetime: lifetime,
		maxHold:  maxHold,
	}
	var mem *storeMemory
	if offHeap && hugePagesWanted() {
		mem = &storeMemory{}
	}
	for i := range st.shards {
		sh := &st.shards[i]
		sh.num = uint16(i)
		sh.due.Store(math.MaxInt64)
		if mem != nil {
			sh.mem = mem
			sh.wheel.UseMemory(mem.chunks.bytes)
		}
	}
	st.mem = mem
	if mem != nil {
		// The regions go when the shards do (hugemem.go).
		runtime.AddCleanup(&st.shards[0], (*storeMemory).release, mem)
	}
	return st
}

func (st *memStore) shardOf(id ID) *shard { return &st.shards[id.shard(st.mask)] }

func (st *memStore) refOf(sh *shard, slot uint32, r *record) ref {
	return ref{slot: slot, gen: r.gen &^ stateMask, part: sh.num}
}

// endsAt returns when the session in slot ends and why.
func (st *memStore) endsAt(sh *shard, slot uint32, r *record) (int64, Reason) {
	// Only an absolute timeout needs the time of creation: it lives in
	// another array, and reading it would cost every touch one more cache
	// miss (with the clock read moved before the misses, a random touch at
	// 10M sessions went from 794 to 502 ns).
	var born int64
	if st.tm.abs > 0 {
		born = *sh.born(slot)
	}
	return st.tm.endsAt(r.access, born, r.idle)
}

// file puts slot in its shard's wheel under the tick of end (a multiple of
// the tick), keeps the shard's due tick at or before it, and tells the
// manager. The caller holds sh.mu.
func (st *memStore) file(sh *shard, slot uint32, end int64) {
	t := end / st.tm.tick
	sh.wheel.Add(slot, t)
	if t < sh.due.Load() {
		sh.due.Store(t)
	}
	st.filed(t)
}

func (st *memStore) create(id ID) (ref, error) {
	sh := st.shardOf(id)
	// Fresh memory is faulted in here, with no lock held, rather than
	// under the shard's lock by the first write to it (hugemem.go).
	st.mem.prepare()
	sh.lockTouch() // a request waits: the sweep lets it in
	defer sh.mu.Unlock()
	if st.closed.Load() { // checked under the lock: see shutdown
		return ref{}, ErrClosed
	}
	slot, ok := sh.alloc()
	if !ok {
		return ref{}, ErrTooManySessions
	}
	now := st.tm.now()
	r := sh.rec(slot)
	*r = record{id: id, access: st.tm.tickOf(now), gen: r.gen&^stateMask + genStep | stateLive}
	*sh.born(slot) = now
	sh.index(id, slot)
	end, _ := st.endsAt(sh, slot, r)
	st.file(sh, slot, end)
	sh.stats.created++
	return st.refOf(sh, slot, r), nil
}

// lookup is the hot path. A touch is a store of the current tick into the
// record, never moving it backwards; the session is not moved in the wheel.
// When its wheel entry comes due the sweep sees the later access and files
// it again, so a session is re-filed about once per idle period however
// often it is touched. The clock is read under the shard's lock, which
// orders the touch with every other touch and with the session's ending
// (timemodel.go); the store is plain because everything that reads it holds
// that lock.
func (st *memStore) lookup(id ID, touch bool) (ref, bool) {
	sh := st.shardOf(id)
	sh.lockTouch()
	// The clock is read before the index and the record: its read waits
	// for the loads before it to complete (on x86 the vDSO orders it with
	// LFENCE), and here there are none, where after them it would add its
	// own time to theirs.
	now := st.tm.now()
	slot, _, ok := sh.find(id)
	if !ok {
		sh.stats.misses++
		sh.mu.Unlock()
		return ref{}, false
	}
	r := sh.rec(slot)
	if end, _ := st.endsAt(sh, slot, r); now >= end {
		sh.stats.misses++
		sh.mu.Unlock()
		return ref{}, false
	}
	if touch {
		sh.stats.touchHits++
		if t := st.tm.touchTick(r.access, now); t != r.access {
			r.access = t // at most once per tick: most touches write nothing
		}
	} else {
		sh.stats.peekHits++
	}
	h := st.refOf(sh, slot, r)
	sh.mu.Unlock()
	return h, true
}

func (st *memStore) expire(id ID, b []ending) ([]ending, bool, bool) {
	sh := st.shardOf(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	slot, pos, ok := sh.find(id)
	if !ok {
		return b, false, false
	}
	b, alive := st.terminate(sh, slot, pos, Explicit, st.tm.now(), b)
	return b, true, alive
}

// terminate ends the live session in slot for reason, unless it has already
// expired by now, in which case it ends for why it expired and terminate
// reports false. pos is as for retire. The caller holds sh.mu.
func (st *memStore) terminate(sh *shard, slot uint32, pos int, reason Reason, now int64, b []ending) ([]ending, bool) {
	alive := true
	if end, why := st.endsAt(sh, slot, sh.rec(slot)); now >= end {
		reason, alive = why, false
		st.lateness.observe(time.Duration(now - end))
	}
	return st.retire(sh, slot, pos, reason, now, b), alive
}

// retire ends the live session in slot: out of the wheel and the index
// (lookups miss from now on), counted, and either freed at once or, if it
// has callbacks to run, appended to b in state ending. pos is its place in
// the index if the caller knows it, or -1. The caller holds sh.mu.
func (st *memStore) retire(sh *shard, slot uint32, pos int, reason Reason, now int64, b []ending) []ending {
	r := sh.rec(slot)
	sh.wheel.Remove(slot)
	sh.unindexSlot(r.id, slot, pos)
	sh.stats.ended[reason]++
	st.lifetime.observe(time.Duration(now - *sh.born(slot)))
	var notify []func(Session, Reason)
	if ex := sh.extra(slot, false); ex != nil {
		notify = ex.notify
		st.disown(ex)
	}
	if notify == nil {
		notify = sh.noteFuncs(slot)
	}
	if notify == nil && !st.keep {
		sh.release(slot)
		return b
	}
	r.gen = r.gen&^stateMask | stateEnding
	return append(b, ending{id: r.id, r: st.refOf(sh, slot, r), reason: reason, notify: notify})
}

func (st *memStore) renew(id, nid ID) (ref, error) {
	osh, nsh := st.shardOf(id), st.shardOf(nid)
	// Two shards are locked in index order, the only place that holds two.
	first, second := osh, nsh
	if nsh.num < osh.num {
		first, second = nsh, osh
	}
	first.mu.Lock()
	if second != first {
		second.mu.Lock()
	}
	defer func() {
		if second != first {
			second.mu.Unlock()
		}
		first.mu.Unlock()
	}()
	if st.closed.Load() {
		return ref{}, ErrClosed
	}
	slot, pos, ok := osh.find(id)
	if !ok {
		return ref{}, ErrEnded
	}
	or := osh.rec(slot)
	now := st.tm.now()
	if end, _ := st.endsAt(osh, slot, or); now >= end {
		return ref{}, ErrEnded
	}
	nslot, ok := nsh.alloc()
	if !ok {
		return ref{}, ErrTooManySessions
	}
	nr := nsh.rec(nslot)
	*nr = record{id: nid, access: st.tm.touchTick(or.access, now), idle: or.idle, gen: nr.gen&^stateMask + genStep | stateLive}
	*nsh.born(nslot) = *osh.born(slot)
	if ex := osh.extras[slot]; ex != nil {
		delete(osh.extras, slot)
		nsh.extra(nslot, true)
		nsh.extras[nslot] = ex
		st.reown(ex, nsh, nslot) // the owner index follows: Renew keeps the owner
	}
	if fs := osh.noteFuncs(slot); fs != nil {
		nsh.setNote(nslot, nsh.intern(fs[0])) // osh.release drops the old one
	}
	// Out of the index before the new ID goes in: indexing may rebuild the
	// index, which would move the old entry away from pos.
	osh.unindexSlot(id, slot, pos)
	osh.wheel.Remove(slot)
	osh.release(slot)
	nsh.index(nid, nslot)
	end, _ := st.endsAt(nsh, nslot, nr)
	st.file(nsh, nslot, end)
	osh.stats.renewed++
	nsh.stats.touches++ // a renewal happens on a request: it touches
	return st.refOf(nsh, nslot, nr), nil
}

// evict finds the session that ends soonest across shards. A shard's due
// tick is at or before the end of every session in it, so only shards whose
// due tick comes before the best end found so far need a look; a look files
// touched sessions at their real end until the shard's first entry is exact.
func (st *memStore) evict(b []ending) ([]ending, bool) {
	var known [MaxShards]int64 // exact first end tick of the shards looked at
	var looked [MaxShards]bool
	for tries := 0; tries < 4*len(st.shards); tries++ {
		best, bestTick := -1, int64(math.MaxInt64)
		for i := range st.shards {
			t := known[i]
			if !looked[i] {
				t = st.shards[i].due.Load()
			}
			if t < bestTick {
				best, bestTick = i, t
			}
		}
		if best < 0 {
			return b, false
		}
		sh := &st.shards[best]
		sh.mu.Lock()
		slot, t, ok := st.firstEnd(sh)
		if ok && looked[best] && t <= known[best] {
			// Looked at before and still first: nothing ends sooner.
			b, _ = st.terminate(sh, slot, -1, Evicted, st.tm.now(), b)
			sh.mu.Unlock()
			return b, true
		}
		sh.mu.Unlock()
		if !ok {
			t = math.MaxInt64
		}
		known[best], looked[best] = t, true
	}
	return b, false
}

// firstEnd files the first entries of sh's wheel at their real end until
// the first one is exact, and returns it with its end tick. The caller
// holds sh.mu.
func (st *memStore) firstEnd(sh *shard) (slot uint32, tick int64, ok bool) {
	for {
		slot, filed, ok := sh.wheel.First()
		if !ok {
			sh.settle()
			return 0, 0, false
		}
		end, _ := st.endsAt(sh, slot, sh.rec(slot))
		if t := end / st.tm.tick; t > filed {
			sh.wheel.Add(slot, t) // touched since it was filed; later, so no wake-up
			sh.stats.refiles++
			continue
		}
		return slot, filed, true
	}
}

// sweep ends what is due by now, shard by shard, a few entries per hold of
// a shard's lock (sweepShard). Between two holds it looks whether a touch
// is waiting for the lock (shard.waiting); if one is, it leaves that shard
// for later and goes on with the next due shard, so that the touch gets
// the lock as soon as it runs. (Unlocking and locking the same shard again
// would not do: Go's mutex lets the running goroutine take it before a
// waiter it woke has run, until the waiter has waited 1 ms.) Otherwise it
// stays on the shard: its wheel entries, records and index are read in
// order, which the caches reward (going round all the shards each hold
// halved the endings per second).
func (st *memStore) sweep(emit func([]ending, int), stop <-chan struct{}) int {
	t := st.tm.tickOf(st.tm.now())
	var due [MaxShards]uint16
	k := 0
	for i := range st.shards {
		if st.shards[i].due.Load() <= t {
			due[k] = uint16(i)
			k++
		}
	}
	n, holds := 0, 0
	b, pending := st.newBatch(), 0 // pending: sessions ended since the last emit
	for k > 0 {
		left := 0
		for _, i := range due[:k] {
			sh := &st.shards[i]
			// At least one hold per shard and round, so that touches
			// that keep waiting (for one another) do not keep the sweep
			// from a shard.
			for more := true; more; {
				var ended int
				b, ended, more = st.sweepShard(sh, t, b)
				n += ended
				pending += ended
				if len(b) > sweepBatch-sweepHold || pending >= sweepBatch {
					emit(b, pending)
					b, pending = st.newBatch(), 0
					select {
					case <-stop:
						return n
					default:
					}
				}
				// Yield now and then, with no lock held: a goroutine that
				// runs for 10 ms is preempted wherever it is, and a sweep
				// preempted inside a hold keeps the shard locked for the
				// whole time slice of whatever runs instead (measured:
				// 2-20 ms holds without this).
				if holds++; holds%256 == 0 {
					runtime.Gosched()
				}
				if more && sh.waiting.Load() != 0 {
					due[left] = i // a touch is waiting: come back later
					left++
					break
				}
			}
		}
		k = left
		select {
		case <-stop:
			emit(b, pending)
			return n
		default:
		}
		if k > 0 {
			runtime.Gosched() // the shards left were left to waiting touches: let them run
		}
	}
	emit(b, pending)
	return n
}

// sweepShard ends what is due in sh by tick t, at most sweepHold wheel
// entries, under one hold of its lock, appending the endings to b. An entry
// whose session was touched since it was filed is filed again at its real
// end, which is after tick t (timemodel.go), so a shard runs out of entries
// due. It reports whether entries due may be left.
func (st *memStore) sweepShard(sh *shard, t int64, b []ending) ([]ending, int, bool) {
	ended := 0
	sh.mu.Lock()
	start := time.Now()
	now := st.tm.now() // under the lock: after every touch it orders before
	more := false
	for i := 0; ; i++ {
		if i == sweepHold {
			more = true
			break
		}
		slot, _, ok := sh.wheel.Poll(t)
		if !ok {
			break
		}
		end, why := st.endsAt(sh, slot, sh.rec(slot))
		if now < end {
			sh.wheel.Add(slot, end/st.tm.tick)
			sh.stats.refiles++
			continue
		}
		st.lateness.observe(time.Duration(now - end))
		b = st.retire(sh, slot, -1, why, now, b)
		ended++
	}
	if !more {
		sh.settle()
	}
	st.maxHold.observe(time.Since(start))
	sh.mu.Unlock()
	return b, ended, more
}

func (st *memStore) next() int64 {
	next := int64(math.MaxInt64)
	for i := range st.shards {
		next = min(next, st.shards[i].due.Load())
	}
	return next
}

func (st *memStore) shutdown(discard bool, emit func([]ending, int)) {
	// From here create and renew fail: they check closed under the shard
	// lock, and the loop below takes every shard's lock after this store.
	st.closed.Store(true)
	for i := range st.shards {
		sh := &st.shards[i]
		for slot := uint32(0); ; {
			var b []ending
			n := 0
			sh.mu.Lock()
			now := st.tm.now()
			for ; slot < sh.used && n < sweepBatch; slot++ {
				r := sh.rec(slot)
				if r.gen&stateMask != stateLive {
					continue
				}
				n++
				if discard {
					sh.wheel.Remove(slot)
					sh.unindexSlot(r.id, slot, -1)
					sh.stats.discarded++
					st.disownSlot(sh, slot)
					sh.release(slot)
					continue
				}
				b, _ = st.terminate(sh, slot, -1, Shutdown, now, b)
			}
			last := slot >= sh.used
			sh.mu.Unlock()
			emit(b, n)
			if last {
				break
			}
		}
	}
}

func (st *memStore) release(b []ending) {
	var locked *shard
	for i := range b {
		sh := &st.shards[b[i].r.part]
		if sh != locked {
			if locked != nil {
				locked.mu.Unlock()
			}
			sh.mu.Lock()
			locked = sh
		}
		sh.release(b[i].r.slot)
	}
	if locked != nil {
		locked.mu.Unlock()
	}
	st.freeBatch(b)
}

// newBatch and freeBatch recycle the sweep's batches: at millions of
// endings a second they would be most of what the driver allocates, and a
// GC assist taken while a shard is locked lengthens the hold.
func (st *memStore) newBatch() []ending {
	if p, ok := st.batches.Get().(*[]ending); ok {
		return (*p)[:0]
	}
	return make([]ending, 0, sweepBatch)
}

func (st *memStore) freeBatch(b []ending) {
	if cap(b) < sweepBatch {
		return
	}
	clear(b) // drop the callbacks it refers to
	b = b[:0]
	st.batches.Put(&b)
}

func (st *memStore) each(f func(ID, ref) bool) {
	type live struct {
		id ID
		r  ref
	}
	var batch []live
	for i := range st.shards {
		sh := &st.shards[i]
		batch = batch[:0]
		sh.mu.Lock()
		now := st.tm.now()
		for slot := range sh.used {
			r := sh.rec(slot)
			if r.gen&stateMask != stateLive {
				continue
			}
			if end, _ := st.endsAt(sh, slot, r); now < end {
				batch = append(batch, live{r.id, st.refOf(sh, slot, r)})
			}
		}
		sh.mu.Unlock()
		for _, s := range batch {
			if !f(s.id, s.r) {
				return
			}
		}
	}
}

func (st *memStore) addStats(out *Stats) {
	out.OffHeapBytes += st.mem.held()
	for i := range st.shards {
		sh := &st.shards[i]
		sh.mu.Lock()
		c := sh.stats
		out.BucketVisits += sh.wheel.Visits()
		sh.mu.Unlock()
		out.Created += c.created
		out.Renewed += c.renewed
		out.Touches += c.touchHits + c.touches
		out.LookupHits += c.touchHits + c.peekHits
		out.LookupMisses += c.misses
		out.Refiles += c.refiles
		out.Discarded += c.discarded
		for r := range c.ended {
			out.Ended[r] += c.ended[r]
		}
	}
	st.own.addStats(out)
}

// lock locks the shard of a handle and returns its record and the time if
// the handle still names the session: live (and not past its end) when live
// is true, or live or ending otherwise. On error nothing is left locked.
func (st *memStore) lock(id ID, h ref, live bool) (*shard, *record, int64, error) {
	if int(h.part) >= len(st.shards) {
		return nil, nil, 0, ErrEnded
	}
	sh := &st.shards[h.part]
	sh.lockTouch()
	if h.slot < sh.used {
		r := sh.rec(h.slot)
		// The generation tells a reused slot apart; the ID as well, since a
		// slot reused 2^30 times wraps the generation.
		if r.gen&^stateMask == h.gen && r.id == id {
			switch r.gen & stateMask {
			case stateEnding:
				if !live {
					return sh, r, 0, nil
				}
			case stateLive:
				if !live {
					return sh, r, 0, nil
				}
				now := st.tm.now()
				if end, _ := st.endsAt(sh, h.slot, r); now < end {
					return sh, r, now, nil
				}
			}
		}
	}
	sh.mu.Unlock()
	return nil, nil, 0, ErrEnded
}

func (st *memStore) alive(id ID, h ref) bool {
	sh, _, _, err := st.lock(id, h, true)
	if err != nil {
		return false
	}
	sh.mu.Unlock()
	return true
}

func (st *memStore) touch(id ID, h ref) error {
	sh, r, now, err := st.lock(id, h, true)
	if err != nil {
		return err
	}
	sh.stats.touches++
	r.access = st.tm.touchTick(r.access, now)
	sh.mu.Unlock()
	return nil
}

func (st *memStore) expireRef(id ID, h ref, b []ending) ([]ending, error) {
	sh, _, now, err := st.lock(id, h, true)
	if err != nil {
		return b, err
	}
	b, _ = st.terminate(sh, h.slot, -1, Explicit, now, b)
	sh.mu.Unlock()
	return b, nil
}

func (st *memStore) value(id ID, h ref, key string) (any, error) {
	sh, _, _, err := st.lock(id, h, false)
	if err != nil {
		return nil, err
	}
	defer sh.mu.Unlock()
	if ex := sh.extra(h.slot, false); ex != nil {
		if v, ok := ex.values[key]; ok {
			return v, nil
		}
	}
	return nil, ErrNoValue
}

func (st *memStore) setValue(id ID, h ref, key string, v any) error {
	sh, _, _, err := st.lock(id, h, true)
	if err != nil {
		return err
	}
	ex := sh.extra(h.slot, true)
	if ex.values == nil {
		ex.values = map[string]any{}
	}
	ex.values[key] = v
	sh.mu.Unlock()
	return nil
}

func (st *memStore) deleteValue(id ID, h ref, key string) error {
	sh, _, _, err := st.lock(id, h, true)
	if err != nil {
		return err
	}
	if ex := sh.extra(h.slot, false); ex != nil {
		delete(ex.values, key)
	}
	sh.mu.Unlock()
	return nil
}

func (st *memStore) notify(id ID, h ref, f func(Session, Reason)) error {
	sh, _, _, err := st.lock(id, h, true)
	if err != nil {
		return err
	}
	if f != nil {
		sh.addNotify(h.slot, f)
	}
	sh.mu.Unlock()
	return nil
}

func (st *memStore) setIdle(id ID, h ref, ticks uint32) error {
	sh, r, _, err := st.lock(id, h, true)
	if err != nil {
		return err
	}
	r.idle = ticks
	// A later end is found lazily when the wheel entry comes due; an
	// earlier one must move the entry.
	end, _ := st.endsAt(sh, h.slot, r)
	if filed, ok := sh.wheel.When(h.slot); ok && end/st.tm.tick < filed {
		st.file(sh, h.slot, end)
	}
	sh.mu.Unlock()
	return nil
}

func (st *memStore) idleTimeout(id ID, h ref) (time.Duration, error) {
	sh, r, _, err := st.lock(id, h, false)
	if err != nil {
		return 0, err
	}
	defer sh.mu.Unlock()
	if r.idle != 0 {
		return time.Duration(int64(r.idle) * st.tm.tick), nil
	}
	return time.Duration(st.tm.idle), nil
}

func (st *memStore) times(id ID, h ref) (created, access, end int64, err error) {
	sh, r, _, err := st.lock(id, h, false)
	if err != nil {
		return 0, 0, 0, err
	}
	defer sh.mu.Unlock()
	end, _ = st.endsAt(sh, h.slot, r)
	return *sh.born(h.slot), st.tm.tickStart(r.access), end, nil
}
