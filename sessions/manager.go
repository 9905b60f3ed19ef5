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
	tm     *timeModel   // the clock and the time arithmetic (timemodel.go)
	st     store        // where the sessions live (store.go)
	shared *sharedStore // st, when it is a shared Store (Config.Store); nil otherwise
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
	m.armed.Store(math.MaxInt64)
	if cfg.Store != nil {
		err := cfg.Store.Open(StoreConfig{IdleTimeout: cfg.IdleTimeout, AbsoluteTimeout: cfg.AbsoluteTimeout, Tick: cfg.Tick})
		if err != nil {
			return nil, err
		}
		m.shared = newSharedStore(cfg.Store, m.tm, cfg.Codec, m.nextID, func() int { return m.cfg.QueueLen - m.q.backlog() })
		m.st = m.shared
		m.start()
		return m, nil
	}
	st := newMemStore(m.tm, cfg.Shards, cfg.OnExpire != nil, m.filed, m.lateness, m.lifetime, &m.maxHold)
	m.st = st
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
	m.start()
	if m.restored > 0 {
		m.sweep() // what ended while no process kept it ends now
	}
	return m, nil
}

// start starts the callback workers and the driver.
func (m *Manager) start() {
	m.q.init(m.cfg.QueueLen)
	m.workers.Add(m.cfg.Workers)
	for range m.cfg.Workers {
		go m.work(&job{})
	}
	m.driver.Add(1)
	go m.drive()
	if m.shared != nil && !m.manual {
		m.wakeDriver() // claim what came due while no process of ours ran
	}
}

// Config returns the manager's configuration, with defaults filled in.
func (m *Manager) Config() Config { return m.cfg }

// Len returns the number of live sessions (counting those past their
// deadline that the driver has not ended yet). It never exceeds
// Config.MaxSessions. With a shared Store it is the store's count, for all
// processes (0 if the store cannot be reached).
func (m *Manager) Len() int {
	if m.shared != nil {
		n, _ := m.shared.s.Len(bg)
		return n
	}
	return int(m.live.Load())
}

func (m *Manager) handle(id ID, r ref) Session { return Session{m: m, id: id, ref: r} }

func (m *Manager) nextID() ID {
	if m.newID != nil {
		return m.newID()
	}
	return m.ids.Next()
}

// Create starts a new session with a fresh random ID. It fails with
// ErrTooManySessions when the manager holds Config.MaxSessions (unless
// Config.Evict), with ErrClosed after Close, and, on a shared Store that
// cannot be reached, with an error wrapping ErrUnavailable.
func (m *Manager) Create() (Session, error) {
	if m.closed.Load() {
		m.failedClosed.Add(1)
		return Session{}, ErrClosed
	}
	if m.shared != nil {
		rec, err := m.shared.createRecord(m.nextID())
		if err != nil {
			return Session{}, err
		}
		return m.handle(rec.ID, ref{}), nil
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

// Lookup is Get with an error instead of ok: ErrNotFound when no live
// session has the ID, and, on a shared Store that cannot be reached, an
// error wrapping ErrUnavailable, which says nothing of the session (a
// caller must not take it as ended: httpadapter answers 503). In memory, a
// lookup never fails otherwise.
func (m *Manager) Lookup(id ID) (Session, error) {
	if m.shared != nil {
		if err := m.shared.lookupErr(id, true); err != nil {
			return Session{}, err
		}
		return m.handle(id, ref{}), nil
	}
	if s, ok := m.lookup(id, true); ok {
		return s, nil
	}
	return Session{}, ErrNotFound
}

// LookupString is Lookup for an ID in text form, as GetString is for Get:
// text that is not an ID gets ErrMalformedID (and is counted in
// Stats.LookupRejected).
func (m *Manager) LookupString(text string) (Session, error) {
	id, err := ParseID(text)
	if err != nil {
		m.rejected.Add(1)
		return Session{}, err
	}
	return m.Lookup(id)
}

// Expire ends the session with the given ID now, with reason Explicit (a
// logout), and reports whether it was alive. A session whose deadline has
// passed but that the driver has not ended yet ends as Idle (or Absolute),
// and Expire reports false. Callbacks run on the worker pool; Expire does
// not wait for them. On a shared store that cannot be reached it reports
// false too, having ended nothing: Session.Expire reports the error.
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
	if m.shared != nil {
		rec, err := m.shared.renewRecord(id, nid)
		if err != nil {
			return Session{}, err
		}
		return m.handle(rec.ID, ref{}), nil
	}
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
