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
	cfg    Config
	tm     *timeModel // the clock and the time arithmetic (timemodel.go)
	st     store      // where the sessions live (store.go)
	ids    IDSource
	newID  func() ID // nil: ids.Next; set by tests only (export_test.go)
	manual bool      // tests only: no timer wakes the driver, Sweep does the work

	live   atomic.Int64 // sessions alive or reserved by a Create in progress
	closed atomic.Bool
	// armed is the tick the driver's wake-up is set for, or MaxInt64 while
	// it is being set or there is none: filing a session that ends earlier
	// wakes the driver to set it again (see arm).
	armed atomic.Int64

	restored uint64 // sessions New read from Config.Restore

	rejected, failedFull, failedClosed, panics atomic.Uint64
	lateness, lifetime, callbackTime           *histogram
	maxHold                                    maxDuration

	q         queue
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
		tm:           newTimeModel(cfg),
		newID:        newID,
		manual:       manual,
		lateness:     newHistogram(LatenessBounds()),
		lifetime:     newHistogram(LifetimeBounds()),
		callbackTime: newHistogram(CallbackDurationBounds()),
		wake:         make(chan struct{}, 1),
		stop:         make(chan struct{}),
	}
	st := newMemStore(m.tm, cfg.Shards, cfg.OnExpire != nil, m.filed, m.lateness, m.lifetime, &m.maxHold)
	m.st = st
	m.armed.Store(math.MaxInt64)
	if cfg.Restore != nil {
		// Before anything runs, so that a bad snapshot leaves nothing behind.
		n, err := m.restoreInto(st, cfg.Restore)
		if err != nil {
			return nil, err
		}
		m.cfg.Restore = nil // read: not to be kept
		m.restored = uint64(n)
		m.live.Store(int64(n))
	}
	m.q.init(cfg.QueueLen)
	m.workers.Add(cfg.Workers)
	for range cfg.Workers {
		go m.work(&job{})
	}
	m.driver.Add(1)
	go m.drive()
	if m.restored > 0 {
		m.sweep() // what ended while no process kept it ends now
	}
	return m, nil
}

// Config returns the manager's configuration, with defaults filled in.
func (m *Manager) Config() Config { return m.cfg }

// Len returns the number of live sessions (counting those past their
// deadline that the driver has not ended yet). It never exceeds
// Config.MaxSessions.
func (m *Manager) Len() int { return int(m.live.Load()) }

func (m *Manager) handle(id ID, r ref) Session { return Session{m: m, id: id, ref: r} }

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
	r, err := m.st.create(id)
	if err != nil {
		m.live.Add(-1)
		if err == ErrClosed {
			m.failedClosed.Add(1)
		} else {
			m.failedFull.Add(1)
		}
		return Session{}, err
	}
	return m.handle(id, r), nil
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
			if b, ok := m.st.evict(nil); ok {
				m.dispatch(b, false) // the victim's place in live is now ours
				return nil
			}
			if m.reserve() {
				return nil
			}
			runtime.Gosched()
		}
	}
	m.failedFull.Add(1)
	return ErrTooManySessions
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

func (m *Manager) lookup(id ID, touch bool) (Session, bool) {
	r, ok := m.st.lookup(id, touch)
	if !ok {
		return Session{}, false
	}
	return m.handle(id, r), true
}

// Expire ends the session with the given ID now, with reason Explicit (a
// logout), and reports whether it was alive. A session whose deadline has
// passed but that the driver has not ended yet ends as Idle (or Absolute),
// and Expire reports false. Callbacks run on the worker pool; Expire does
// not wait for them.
func (m *Manager) Expire(id ID) bool {
	b, ended, alive := m.st.expire(id, nil)
	if ended {
		m.live.Add(-1)
	}
	m.dispatch(b, false)
	return alive
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
	r, err := m.st.renew(id, nid)
	if err != nil {
		return Session{}, err
	}
	return m.handle(nid, r), nil
}

// Range calls f for each live session, in no particular order, until f
// returns false. f runs with no lock held and may call any method; a
// session created during Range may or may not be seen.
func (m *Manager) Range(f func(Session) bool) {
	m.st.each(func(id ID, r ref) bool { return f(m.handle(id, r)) })
}

// Stats returns a snapshot of the manager's counters.
func (m *Manager) Stats() Stats {
	st := Stats{
		Active:             int(m.live.Load()),
		CreateFailedFull:   m.failedFull.Load(),
		CreateFailedClosed: m.failedClosed.Load(),
		LookupRejected:     m.rejected.Load(),
		CallbackPanics:     m.panics.Load(),
		Restored:           m.restored,
		CallbackQueue:      m.q.backlog(),
		MaxSweepHold:       time.Duration(m.maxHold.v.Load()),
		Lateness:           m.lateness.snapshot(),
		Lifetime:           m.lifetime.snapshot(),
		CallbackDuration:   m.callbackTime.snapshot(),
	}
	m.st.addStats(&st)
	return st
}
