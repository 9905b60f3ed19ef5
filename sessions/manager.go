package sessions

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// A Manager keeps sessions and ends each one when it has been idle too long.
// Make one with New; it is safe for concurrent use. Close it when done: it
// runs a goroutine that drives the timing wheels and a pool that runs
// expiry callbacks.
type Manager struct {
	cfg       Config
	idle, abs int64 // Config.IdleTimeout (rounded up to whole ticks) and AbsoluteTimeout, in ns
	tickNs    int64
	maxTick   int64 // MaxInt64 / tickNs: ticks beyond it saturate
	epoch     time.Time // time 0 of the manager's clock (timemodel.go)
	sysClock  bool      // cfg.Clock is the system clock: read it with time.Since
	shardMask uint32
	shards    []shard
	ids       IDSource
	newID     func() ID // nil: ids.Next; set by tests only (export_test.go)
	manual    bool      // tests only: no timer wakes the driver, Sweep does the work

	live   atomic.Int64 // sessions alive or reserved by a Create in progress
	closed atomic.Bool
	// armed is the tick the driver's wake-up is set for, or MaxInt64 while
	// it is being set or there is none: filing a session that ends earlier
	// wakes the driver to set it again (see arm).
	armed atomic.Int64

	rejected, failedFull, failedClosed, panics atomic.Uint64
	lateness, lifetime, callbackTime           *histogram
	maxHold                                    maxDuration

	q         queue
	batches   sync.Pool // of *[]ending with room for sweepBatch
	wake      chan struct{}
	stop      chan struct{}
	timerMu   sync.Mutex // guards wakeTimer; serialises arming with Close
	wakeTimer Timer      // the driver's next wake-up
	sweepMu   sync.Mutex // one sweep at a time: the driver's, Sweep's or Close's
	driver    sync.WaitGroup
	workers   sync.WaitGroup
}

// New returns a manager configured by cfg, with its driver and callback
// workers running. It returns an error wrapping ErrInvalidConfig if cfg has
// a bad value.
func New(cfg Config) (*Manager, error) { return newManager(cfg, nil, false) }

func newManager(cfg Config, newID func() ID, manual bool) (*Manager, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Manager{
		cfg:          cfg,
		tickNs:       int64(cfg.Tick),
		maxTick:      math.MaxInt64 / int64(cfg.Tick),
		idle:         ticks(cfg.IdleTimeout, cfg.Tick) * int64(cfg.Tick),
		abs:          int64(cfg.AbsoluteTimeout),
		epoch:        cfg.Clock.Now(),
		shardMask:    uint32(cfg.Shards - 1),
		shards:       make([]shard, cfg.Shards),
		newID:        newID,
		manual:       manual,
		lateness:     newHistogram(LatenessBounds()),
		lifetime:     newHistogram(LifetimeBounds()),
		callbackTime: newHistogram(CallbackDurationBounds()),
		wake:         make(chan struct{}, 1),
		stop:         make(chan struct{}),
	}
	_, m.sysClock = cfg.Clock.(systemClock)
	m.armed.Store(math.MaxInt64)
	for i := range m.shards {
		m.shards[i].num = uint16(i)
		m.shards[i].due.Store(math.MaxInt64)
	}
	m.q.init(cfg.QueueLen)
	m.workers.Add(cfg.Workers)
	for range cfg.Workers {
		go m.work(&job{})
	}
	m.driver.Add(1)
	go m.drive()
	return m, nil
}

// Config returns the manager's configuration, with defaults filled in.
func (m *Manager) Config() Config { return m.cfg }

// Len returns the number of live sessions (counting those past their
// deadline that the driver has not ended yet). It never exceeds
// Config.MaxSessions.
func (m *Manager) Len() int { return int(m.live.Load()) }

func (m *Manager) shardOf(id ID) (uint16, *shard) {
	i := id.shard(m.shardMask)
	return uint16(i), &m.shards[i]
}

func (m *Manager) handle(si uint16, slot uint32, r *record) Session {
	return Session{m: m, id: r.id, shard: si, slot: slot, gen: r.gen &^ stateMask}
}

func (m *Manager) nextID() ID {
	if m.newID != nil {
		return m.newID()
	}
	return m.ids.Next()
}

// Create starts a new session with a fresh random ID. It fails with
// ErrTooManySessions when the manager holds Config.MaxSessions (unless
// Config.Evict) and with ErrClosed after Close.
func (m *Manager) Create() (Session, error) {
	if m.closed.Load() {
		m.failedClosed.Add(1)
		return Session{}, ErrClosed
	}
	if !m.reserve() {
		if err := m.makeRoom(); err != nil {
			return Session{}, err
		}
	}
	id := m.nextID()
	si, sh := m.shardOf(id)
	sh.mu.Lock()
	if m.closed.Load() { // checked again under the lock: see Close
		sh.mu.Unlock()
		m.live.Add(-1)
		m.failedClosed.Add(1)
		return Session{}, ErrClosed
	}
	slot, ok := sh.alloc()
	if !ok {
		sh.mu.Unlock()
		m.live.Add(-1)
		m.failedFull.Add(1)
		return Session{}, ErrTooManySessions
	}
	now := m.now()
	r := sh.rec(slot)
	*r = record{id: id, access: m.tickOf(now), gen: r.gen&^stateMask + genStep | stateLive}
	*sh.born(slot) = now
	sh.index(id, slot)
	end, _ := m.endOf(sh, slot, r)
	m.file(sh, slot, end)
	sh.stats.created++
	s := m.handle(si, slot, r)
	sh.mu.Unlock()
	return s, nil
}

// reserve takes a place for a new session in the live count, unless that
// would pass MaxSessions.
func (m *Manager) reserve() bool {
	limit := int64(m.cfg.MaxSessions)
	for {
		n := m.live.Load()
		if limit > 0 && n >= limit {
			return false
		}
		if m.live.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// makeRoom gets Create a place in a full manager: the place of an evicted
// session if Config.Evict is set. When every place is held by a Create
// still in progress there is nothing to evict yet; it waits for one.
func (m *Manager) makeRoom() error {
	if m.cfg.Evict {
		for range 1 << 16 { // a bound on a wait that ends within microseconds
			if m.closed.Load() {
				m.failedClosed.Add(1)
				return ErrClosed
			}
			if m.evict() || m.reserve() {
				return nil
			}
			runtime.Gosched()
		}
	}
	m.failedFull.Add(1)
	return ErrTooManySessions
}

// evict ends the session that ends soonest, with reason Evicted (or, if its
// deadline has passed, the reason it ended for), and hands its place in the
// live count to the caller. It reports false if no session is filed.
//
// A shard's due tick is at or before the end of every session in it, so
// only shards whose due tick comes before the best end found so far need a
// look; a look files touched sessions at their real end until the shard's
// first entry is exact.
func (m *Manager) evict() bool {
	var known [MaxShards]int64 // exact first end tick of the shards looked at
	var looked [MaxShards]bool
	for tries := 0; tries < 4*len(m.shards); tries++ {
		best, bestTick := -1, int64(math.MaxInt64)
		for i := range m.shards {
			t := known[i]
			if !looked[i] {
				t = m.shards[i].due.Load()
			}
			if t < bestTick {
				best, bestTick = i, t
			}
		}
		if best < 0 {
			return false
		}
		sh := &m.shards[best]
		sh.mu.Lock()
		slot, t, ok := m.firstEnd(sh)
		if ok && looked[best] && t <= known[best] {
			// Looked at before and still first: nothing ends sooner.
			b, _ := m.endBy(sh, slot, -1, Evicted, m.now(), nil, true)
			sh.mu.Unlock()
			m.dispatch(b, false)
			return true
		}
		sh.mu.Unlock()
		if !ok {
			t = math.MaxInt64
		}
		known[best], looked[best] = t, true
	}
	return false
}

// firstEnd files the first entries of sh's wheel at their real end until
// the first one is exact, and returns it with its end tick. The caller
// holds sh.mu.
func (m *Manager) firstEnd(sh *shard) (slot uint32, tick int64, ok bool) {
	for {
		slot, filed, ok := sh.wheel.First()
		if !ok {
			sh.settle()
			return 0, 0, false
		}
		end, _ := m.endOf(sh, slot, sh.rec(slot))
		if t := end / m.tickNs; t > filed {
			sh.wheel.Add(slot, t) // touched since it was filed; later, so no wake-up
			sh.stats.refiles++
			continue
		}
		return slot, filed, true
	}
}

// Get returns the live session with the given ID and touches it; ok is false
// for an unknown ID and for a session that has ended or whose deadline has
// passed, even if the driver has not yet ended it.
func (m *Manager) Get(id ID) (s Session, ok bool) { return m.lookup(id, true) }

// Peek is Get without the touch.
func (m *Manager) Peek(id ID) (s Session, ok bool) { return m.lookup(id, false) }

// Touch keeps the session with the given ID alive, as Get does, and reports
// whether it was alive.
func (m *Manager) Touch(id ID) bool {
	_, ok := m.lookup(id, true)
	return ok
}

// GetString is Get for an ID in text form, as it arrives in a cookie. Text
// that is not an ID is counted in Stats.LookupRejected and never reaches the
// table; GetString does not allocate.
func (m *Manager) GetString(text string) (s Session, ok bool) {
	id, err := ParseID(text)
	if err != nil {
		m.rejected.Add(1)
		return Session{}, false
	}
	return m.lookup(id, true)
}

// lookup is the hot path. A touch is a store of the current tick into the
// record, never moving it backwards; the session is not moved in the wheel.
// When its wheel entry comes due the driver sees the later access and files
// it again, so a session is re-filed about once per idle period however
// often it is touched. The clock is read under the shard's lock, which
// orders the touch with every other touch and with the session's ending
// (timemodel.go); the store is plain because everything that reads it holds
// that lock.
func (m *Manager) lookup(id ID, touch bool) (Session, bool) {
	si, sh := m.shardOf(id)
	sh.mu.Lock()
	slot, _, ok := sh.find(id)
	if !ok {
		sh.stats.misses++
		sh.mu.Unlock()
		return Session{}, false
	}
	r := sh.rec(slot)
	now := m.now()
	if gone, _ := m.expired(sh, slot, r, now); gone {
		sh.stats.misses++
		sh.mu.Unlock()
		return Session{}, false
	}
	if touch {
		sh.stats.touchHits++
		if t := m.touchTick(r.access, now); t != r.access {
			r.access = t // at most once per tick: most touches write nothing
		}
	} else {
		sh.stats.peekHits++
	}
	s := Session{m: m, id: id, shard: si, slot: slot, gen: r.gen &^ stateMask}
	sh.mu.Unlock()
	return s, true
}

// Expire ends the session with the given ID now, with reason Explicit (a
// logout), and reports whether it was alive. A session whose deadline has
// passed but that the driver has not ended yet ends as Idle (or Absolute),
// and Expire reports false. Callbacks run on the worker pool; Expire does
// not wait for them.
func (m *Manager) Expire(id ID) bool {
	_, sh := m.shardOf(id)
	sh.mu.Lock()
	slot, pos, ok := sh.find(id)
	if !ok {
		sh.mu.Unlock()
		return false
	}
	b, alive := m.endBy(sh, slot, pos, Explicit, m.now(), nil, false)
	sh.mu.Unlock()
	m.dispatch(b, false)
	return alive
}

// endBy ends the live session in slot for reason, unless it has already
// expired by now, in which case it ends for why it expired and endBy
// reports false. pos and transfer are as for end. The caller holds sh.mu and
// dispatches the returned batch after unlocking.
func (m *Manager) endBy(sh *shard, slot uint32, pos int, reason Reason, now int64, b []ending, transfer bool) ([]ending, bool) {
	r := sh.rec(slot)
	alive := true
	if end, why := m.endOf(sh, slot, r); now >= end {
		reason, alive = why, false
		m.lateness.observe(time.Duration(now - end))
	}
	return m.end(sh, slot, pos, reason, now, b, transfer), alive
}

// end ends the live session in slot: out of the wheel and the index
// (lookups miss from now on), counted, and either freed at once or, if it
// has callbacks to run, appended to b in state ending. pos is its place in
// the index if the caller knows it, or -1. Its place in the live count is
// given back, unless transfer is set: then it passes to the caller (an
// eviction makes room for a Create). The caller holds sh.mu.
func (m *Manager) end(sh *shard, slot uint32, pos int, reason Reason, now int64, b []ending, transfer bool) []ending {
	r := sh.rec(slot)
	sh.wheel.Remove(slot)
	sh.unindexSlot(r.id, slot, pos)
	if !transfer {
		m.live.Add(-1)
	}
	sh.stats.ended[reason]++
	m.lifetime.observe(time.Duration(now - *sh.born(slot)))
	var notify []func(Session, Reason)
	if ex := sh.extra(slot, false); ex != nil {
		notify = ex.notify
	}
	if notify == nil && m.cfg.OnExpire == nil {
		sh.release(slot)
		return b
	}
	r.gen = r.gen&^stateMask | stateEnding
	return append(b, ending{s: m.handle(sh.num, slot, r), reason: reason, notify: notify})
}

// Renew moves the session with the given ID to a fresh ID, keeping its
// values, callbacks, creation time and idle timeout, and touches it: what a
// server does after a login, against session fixation. The old ID and every
// handle to it stop working (ErrEnded); no callback runs.
func (m *Manager) Renew(id ID) (Session, error) {
	if m.closed.Load() {
		return Session{}, ErrClosed
	}
	nid := m.nextID()
	_, osh := m.shardOf(id)
	nsi, nsh := m.shardOf(nid)
	// Two shards are locked in index order, the only place that holds two.
	first, second := osh, nsh
	if nsi < osh.num {
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
	if m.closed.Load() {
		return Session{}, ErrClosed
	}
	slot, pos, ok := osh.find(id)
	if !ok {
		return Session{}, ErrEnded
	}
	or := osh.rec(slot)
	now := m.now()
	if gone, _ := m.expired(osh, slot, or, now); gone {
		return Session{}, ErrEnded
	}
	nslot, ok := nsh.alloc()
	if !ok {
		return Session{}, ErrTooManySessions
	}
	nr := nsh.rec(nslot)
	*nr = record{id: nid, access: m.touchTick(or.access, now), idle: or.idle, gen: nr.gen&^stateMask + genStep | stateLive}
	*nsh.born(nslot) = *osh.born(slot)
	if ex := osh.extras[slot]; ex != nil {
		delete(osh.extras, slot)
		nsh.extra(nslot, true)
		nsh.extras[nslot] = ex
	}
	// Out of the index before the new ID goes in: indexing may rebuild the
	// index, which would move the old entry away from pos.
	osh.unindexSlot(id, slot, pos)
	osh.wheel.Remove(slot)
	osh.release(slot)
	nsh.index(nid, nslot)
	end, _ := m.endOf(nsh, nslot, nr)
	m.file(nsh, nslot, end)
	osh.stats.renewed++
	nsh.stats.touches++ // a renewal happens on a request: it touches
	return m.handle(nsi, nslot, nr), nil
}

// Range calls f for each live session, in no particular order, until f
// returns false. f runs with no lock held and may call any method; a
// session created during Range may or may not be seen.
func (m *Manager) Range(f func(Session) bool) {
	var batch []Session
	for i := range m.shards {
		sh := &m.shards[i]
		batch = batch[:0]
		sh.mu.Lock()
		now := m.now()
		for slot := range sh.used {
			r := sh.rec(slot)
			if r.gen&stateMask != stateLive {
				continue
			}
			if gone, _ := m.expired(sh, slot, r, now); !gone {
				batch = append(batch, m.handle(uint16(i), slot, r))
			}
		}
		sh.mu.Unlock()
		for _, s := range batch {
			if !f(s) {
				return
			}
		}
	}
}

// Stats returns a snapshot of the manager's counters.
func (m *Manager) Stats() Stats {
	st := Stats{
		Active:             int(m.live.Load()),
		CreateFailedFull:   m.failedFull.Load(),
		CreateFailedClosed: m.failedClosed.Load(),
		LookupRejected:     m.rejected.Load(),
		CallbackPanics:     m.panics.Load(),
		CallbackQueue:      m.q.backlog(),
		MaxSweepHold:       time.Duration(m.maxHold.v.Load()),
		Lateness:           m.lateness.snapshot(),
		Lifetime:           m.lifetime.snapshot(),
		CallbackDuration:   m.callbackTime.snapshot(),
	}
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		c := sh.stats
		st.BucketVisits += sh.wheel.Visits()
		sh.mu.Unlock()
		st.Created += c.created
		st.Renewed += c.renewed
		st.Touches += c.touchHits + c.touches
		st.LookupHits += c.touchHits + c.peekHits
		st.LookupMisses += c.misses
		st.Refiles += c.refiles
		st.Discarded += c.discarded
		for r := range c.ended {
			st.Ended[r] += c.ended[r]
		}
	}
	return st
}
