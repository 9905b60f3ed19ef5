package sessions

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// A Manager keeps sessions and ends each one when it has been idle too long.
// Make one with New; it is safe for concurrent use. Close it when done: it
// runs a goroutine that drives the timing wheels and a pool that runs
// expiry callbacks.
type Manager struct {
	cfg                 Config
	idleTicks, absTicks int64
	epoch               time.Time
	shardMask           uint32
	shards              []shard
	ids                 IDSource

	tick   atomic.Int64 // the current tick, published by onTick
	lags   *lagRing     // how late each recent tick was superseded
	live   atomic.Int64
	closed atomic.Bool

	rejected, failedFull, failedClosed, panics atomic.Uint64
	lateness, lifetime, callbackTime           *histogram
	maxHold                                    maxDuration

	q         queue
	batches   sync.Pool // of *[]ending with room for sweepBatch
	wake      chan struct{}
	stop      chan struct{}
	tickMu    sync.Mutex    // serialises onTick with Close
	timer     Timer         // the next onTick
	wakeTimer Timer         // the next wake-up of the driver
	lead      time.Duration // how long before a tick begins onTick publishes it
	sweepMu   sync.Mutex    // one sweep at a time: the driver's or Sweep's
	driver    sync.WaitGroup
	workers   sync.WaitGroup
}

// New returns a manager configured by cfg, with its driver and callback
// workers running. It returns an error wrapping ErrInvalidConfig if cfg has
// a bad value.
func New(cfg Config) (*Manager, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Manager{
		cfg:          cfg,
		idleTicks:    ticks(cfg.IdleTimeout, cfg.Tick),
		epoch:        cfg.Clock.Now(),
		shardMask:    uint32(cfg.Shards - 1),
		shards:       make([]shard, cfg.Shards),
		lateness:     newHistogram(LatenessBounds()),
		lifetime:     newHistogram(LifetimeBounds()),
		callbackTime: newHistogram(CallbackDurationBounds()),
		wake:         make(chan struct{}, 1),
		stop:         make(chan struct{}),
	}
	if cfg.AbsoluteTimeout > 0 {
		m.absTicks = ticks(cfg.AbsoluteTimeout, cfg.Tick)
	}
	m.lags = newLagRing(max(m.idleTicks, m.absTicks) + 2)
	// Long enough to cover a timer's usual delay, short enough to add
	// little to a session's life.
	m.lead = min(cfg.Tick/8, 5*time.Millisecond)
	for i := range m.shards {
		m.shards[i].num = uint16(i)
		m.shards[i].due.Store(math.MaxInt64)
	}
	m.q.init(cfg.QueueLen)
	m.workers.Add(cfg.Workers)
	for range cfg.Workers {
		go m.work()
	}
	m.driver.Add(1)
	go m.drive()
	m.tickMu.Lock()
	m.timer = cfg.Clock.AfterFunc(cfg.Tick-m.lead, m.onTick)
	m.tickMu.Unlock()
	return m, nil
}

// Config returns the manager's configuration, with defaults filled in.
func (m *Manager) Config() Config { return m.cfg }

// Len returns the number of live sessions.
func (m *Manager) Len() int { return int(m.live.Load()) }

func (m *Manager) shardOf(id ID) (uint16, *shard) {
	i := id.shard(m.shardMask)
	return uint16(i), &m.shards[i]
}

// timeOf converts a tick to the time it starts at.
func (m *Manager) timeOf(tick int64) time.Time {
	return m.epoch.Add(time.Duration(tick) * m.cfg.Tick)
}

func (m *Manager) tickOf(t time.Time) int64 { return int64(t.Sub(m.epoch) / m.cfg.Tick) }

// publish makes the tick of now+lead current, unless time has already
// moved past it (a clock that steps back leaves time standing until it
// catches up), and records how late the tick it replaces was replaced. The
// caller holds tickMu.
func (m *Manager) publish(now time.Time, lead time.Duration) {
	t, old := m.tickOf(now.Add(lead)), m.tick.Load()
	if t > old {
		m.lags.record(old, now.Sub(m.timeOf(old+1)))
		m.tick.Store(t)
	}
}

// deadline returns the tick at which r ends and why: a touch dated by tick
// a happened before a+1 began (if the timer published a+1 on time), so
// ending at a+1+idle is at most one tick late. Whether a session whose
// deadline tick has come has really ended is for ended to say.
func (m *Manager) deadline(sh *shard, slot uint32, r *record) (int64, Reason) {
	idle := m.idleTicks
	if r.idle != 0 {
		idle = int64(r.idle)
	}
	dl := r.access + 1 + idle
	if m.absTicks > 0 {
		if a := *sh.created(slot) + 1 + m.absTicks; a <= dl {
			return a, Absolute
		}
	}
	return dl, Idle
}

// ended reports whether the session in slot, whose deadline tick has come,
// has ended by the time at, and why. It has if its timeout has passed since
// the latest real time its last touch (or its creation) can have happened:
// the end of the tick that dates it plus how late that tick was replaced.
// When it has not (the timer was late), end is when it will.
func (m *Manager) ended(sh *shard, slot uint32, r *record, at time.Time) (yes bool, why Reason, end time.Time) {
	idle := m.cfg.IdleTimeout
	if r.idle != 0 {
		idle = time.Duration(r.idle) * m.cfg.Tick
	}
	end, why = m.timeOf(r.access+1).Add(m.lags.lag(r.access)+idle), Idle
	if m.absTicks > 0 {
		c := *sh.created(slot)
		if a := m.timeOf(c + 1).Add(m.lags.lag(c) + m.cfg.AbsoluteTimeout); !a.After(end) {
			end, why = a, Absolute
		}
	}
	return !at.Before(end), why, end
}

// alive reports whether the session in slot is alive at tick now, and if
// not, why it ended. Past its deadline tick it asks the clock, which only
// sessions overdue and not yet swept cost.
func (m *Manager) alive(sh *shard, slot uint32, r *record, now int64) (bool, Reason) {
	dl, why := m.deadline(sh, slot, r)
	if dl > now {
		return true, why
	}
	ended, why, _ := m.ended(sh, slot, r, m.cfg.Clock.Now())
	return !ended, why
}

func (m *Manager) handle(si uint16, slot uint32, r *record) Session {
	return Session{m: m, id: r.id, shard: si, slot: slot, gen: r.gen &^ stateMask}
}

// Create starts a new session with a fresh random ID. It fails with
// ErrTooManySessions when the manager holds Config.MaxSessions (unless
// Config.Evict) and with ErrClosed after Close.
func (m *Manager) Create() (Session, error) {
	if m.closed.Load() {
		m.failedClosed.Add(1)
		return Session{}, ErrClosed
	}
	id := m.ids.Next()
	si, sh := m.shardOf(id)
	if n, max := m.live.Add(1), int64(m.cfg.MaxSessions); max > 0 && n > max {
		if !m.cfg.Evict || !m.evict(si) {
			m.live.Add(-1)
			m.failedFull.Add(1)
			return Session{}, ErrTooManySessions
		}
	}
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
	now := m.tick.Load()
	r := sh.rec(slot)
	*r = record{id: id, access: now, gen: r.gen&^stateMask + genStep | stateLive}
	*sh.created(slot) = now
	sh.index(id, slot)
	dl, _ := m.deadline(sh, slot, r)
	sh.file(slot, dl)
	sh.stats.created++
	s := m.handle(si, slot, r)
	sh.mu.Unlock()
	return s, nil
}

// evict ends one session with reason Evicted to make room, looking first in
// shard si and then in the shards after it. The victim is the session due
// first among up to evictTries wheel entries: an entry whose session was
// touched since it was filed is re-filed where it belongs, as the driver
// would, and the next one is tried. It reports false if there was nothing
// to evict.
func (m *Manager) evict(si uint16) bool {
	const evictTries = 8
	for k := range len(m.shards) {
		sh := &m.shards[(int(si)+k)&int(m.shardMask)]
		sh.mu.Lock()
		for try := 1; ; try++ {
			slot, when, ok := sh.wheel.First()
			if !ok {
				break
			}
			if dl, _ := m.deadline(sh, slot, sh.rec(slot)); dl > when && try < evictTries {
				sh.wheel.Add(slot, dl)
				sh.stats.refiles++
				continue
			}
			b, _ := m.endNow(sh, slot, -1, Evicted, nil) // an overdue victim ends as idle
			sh.mu.Unlock()
			m.dispatch(b, false)
			return true
		}
		sh.mu.Unlock()
	}
	return false
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
// record, skipped when it is already there; the session is not moved in the
// wheel. When its wheel entry comes due the driver sees the later access and
// files it again, so a session is re-filed about once per idle period
// however often it is touched. The store is plain, not atomic, because
// everything that reads it holds the shard's lock, which the index lookup
// needs anyway.
func (m *Manager) lookup(id ID, touch bool) (Session, bool) {
	si, sh := m.shardOf(id)
	now := m.tick.Load()
	sh.mu.Lock()
	slot, _, ok := sh.find(id)
	if !ok {
		sh.stats.misses++
		sh.mu.Unlock()
		return Session{}, false
	}
	r := sh.rec(slot)
	if ok, _ := m.alive(sh, slot, r, now); !ok {
		sh.stats.misses++
		sh.mu.Unlock()
		return Session{}, false
	}
	if touch {
		sh.stats.touchHits++
		if r.access != now {
			r.access = now
		}
	} else {
		sh.stats.peekHits++
	}
	s := Session{m: m, id: id, shard: si, slot: slot, gen: r.gen &^ stateMask}
	sh.mu.Unlock()
	return s, true
}

// Expire ends the session with the given ID now, with reason Explicit (a
// logout), and reports whether it was alive. Its callbacks run on the
// worker pool; Expire does not wait for them.
func (m *Manager) Expire(id ID) bool {
	_, sh := m.shardOf(id)
	sh.mu.Lock()
	slot, pos, ok := sh.find(id)
	if !ok {
		sh.mu.Unlock()
		return false
	}
	b, alive := m.endNow(sh, slot, pos, Explicit, nil)
	sh.mu.Unlock()
	m.dispatch(b, false)
	return alive
}

// endNow ends the live session in slot for reason, unless its deadline has
// passed, in which case it ends for that (idle or absolute) and endNow
// reports false: it was already dead. pos is as for end. The caller holds sh.mu and dispatches
// the returned batch after unlocking.
func (m *Manager) endNow(sh *shard, slot uint32, pos int, reason Reason, b []ending) ([]ending, bool) {
	r := sh.rec(slot)
	now := m.tick.Load()
	alive := true
	if dl, _ := m.deadline(sh, slot, r); dl <= now {
		at := m.cfg.Clock.Now()
		if ended, why, end := m.ended(sh, slot, r, at); ended {
			// Dead by its deadline, just not yet swept: it ends as the
			// driver would have ended it.
			reason, alive = why, false
			m.lateness.observe(at.Sub(end))
		}
	}
	sh.wheel.Remove(slot)
	return m.end(sh, slot, pos, reason, now, b), alive
}

// end ends the live session in slot: out of the index (lookups miss from
// now on), counted, and either freed at once or, if it has callbacks to
// run, appended to b in state ending. pos is its place in the index, or -1
// if the caller has not looked it up. The caller holds sh.mu and has taken
// the slot out of the wheel.
func (m *Manager) end(sh *shard, slot uint32, pos int, reason Reason, now int64, b []ending) []ending {
	r := sh.rec(slot)
	if pos < 0 { // a live session is always indexed; the driver knows only its slot
		_, pos, _ = sh.find(r.id)
	}
	sh.unindex(pos)
	m.live.Add(-1)
	sh.stats.ended[reason]++
	m.lifetime.observe(time.Duration(now-*sh.created(slot)) * m.cfg.Tick)
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
	nid := m.ids.Next()
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
	now := m.tick.Load()
	slot, pos, ok := osh.find(id)
	if !ok {
		return Session{}, ErrEnded
	}
	or := osh.rec(slot)
	if ok, _ := m.alive(osh, slot, or, now); !ok {
		return Session{}, ErrEnded
	}
	nslot, ok := nsh.alloc()
	if !ok {
		return Session{}, ErrTooManySessions
	}
	nr := nsh.rec(nslot)
	*nr = record{id: nid, access: now, idle: or.idle, gen: nr.gen&^stateMask + genStep | stateLive}
	*nsh.created(nslot) = *osh.created(slot)
	nsh.index(nid, nslot)
	if ex := osh.extras[slot]; ex != nil {
		delete(osh.extras, slot)
		nsh.extra(nslot, true)
		nsh.extras[nslot] = ex
	}
	osh.unindex(pos)
	osh.wheel.Remove(slot)
	osh.release(slot)
	dl, _ := m.deadline(nsh, nslot, nr)
	nsh.file(nslot, dl)
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
		now := m.tick.Load()
		for slot := range sh.used {
			r := sh.rec(slot)
			if r.gen&stateMask != stateLive {
				continue
			}
			if ok, _ := m.alive(sh, slot, r, now); ok {
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
