package sessions

import "time"

// A Session is a handle to a session: a small value (the manager, the ID and
// the session's place in its store), not a pointer to it, so that millions
// of idle sessions cost the garbage collector nothing. Copy it freely.
//
// Once the session has ended, or has been renewed under another ID, its
// methods report ErrEnded (or zero values); a handle never reaches another
// session's data, even after its slot is reused. While the session's expiry
// callbacks run, its values and times can still be read, but not changed.
// The zero Session is a handle to no session.
//
// On a shared store (Config.Store) every method is a round trip to the
// store. Those that return an error wrap ErrUnavailable when it cannot be
// reached; those that return none (Alive, CreatedAt, LastAccess, Deadline,
// IdleTimeout, Owner) then report what they report for an ended session.
// There, a session's times and owner are not readable in its expiry
// callbacks (its values are).
type Session struct {
	m   *Manager
	id  ID
	ref ref
}

// ID returns the session's ID.
func (s Session) ID() ID { return s.id }

// String returns the session's ID in text form.
func (s Session) String() string { return s.id.String() }

// changeErr is the error of a method that changes a session that is gone:
// ErrClosed once the manager is closed, ErrEnded otherwise.
func (s Session) changeErr(err error) error {
	if err == ErrEnded && s.m.closed.Load() {
		return ErrClosed
	}
	return err
}

// Alive reports whether the session is alive: not ended and not past its
// deadline.
func (s Session) Alive() bool { return s.m != nil && s.m.st.alive(s.id, s.ref) }

// Touch keeps the session alive: its idle deadline moves to its idle timeout
// from now.
func (s Session) Touch() error {
	if s.m == nil {
		return ErrEnded
	}
	return s.changeErr(s.m.st.touch(s.id, s.ref))
}

// Expire ends the session now with reason Explicit (a logout); its
// callbacks run on the manager's workers. Ending is idempotent: a session
// that has already ended, or whose deadline has passed, is left to the
// driver and Expire reports ErrEnded.
func (s Session) Expire() error {
	if s.m == nil {
		return ErrEnded
	}
	b, err := s.m.st.expireRef(s.id, s.ref, nil)
	if err != nil {
		return s.changeErr(err)
	}
	s.m.live.Add(-1)
	s.m.dispatch(b, false)
	return nil
}

// Get returns the value stored under key, ErrNoValue if there is none, or
// ErrEnded. It works in the session's expiry callbacks too.
func (s Session) Get(key string) (any, error) {
	if s.m == nil {
		return nil, ErrEnded
	}
	return s.m.st.value(s.id, s.ref, key)
}

// Set stores value under key. Values live in memory with the session and
// are dropped when it ends, after its callbacks have run.
func (s Session) Set(key string, value any) error {
	if s.m == nil {
		return ErrEnded
	}
	return s.changeErr(s.m.st.setValue(s.id, s.ref, key, value))
}

// Delete removes the value under key, if any.
func (s Session) Delete(key string) error {
	if s.m == nil {
		return ErrEnded
	}
	return s.changeErr(s.m.st.deleteValue(s.id, s.ref, key))
}

// NotifyOnExpire registers f to be called once when the session ends, for
// whatever reason, including Expire (Twisted's notifyOnExpire). Callbacks
// run in registration order, then Config.OnExpire, on the manager's worker
// pool with no engine lock held; they may call any method of the manager.
// A callback that panics (or calls runtime.Goexit) is counted in
// Stats.CallbackPanics, and the others still run. A nil f is ignored.
//
// A func value that many sessions share (the same closure, registered on
// each) costs each of them 4 bytes and nothing for the garbage collector:
// it is kept once per shard (notes.go). A distinct closure per session costs
// that closure plus about 80 bytes, with pointers the garbage collector
// scans, as does a session's second callback. When every session's
// callback does the same, Config.OnExpire is the cheapest way.
//
// On a shared Store (Config.Store) NotifyOnExpire fails with an error
// wrapping errors.ErrUnsupported: the session may end in another process,
// where this closure does not exist. Config.OnExpire runs there instead.
func (s Session) NotifyOnExpire(f func(Session, Reason)) error {
	if s.m == nil {
		return ErrEnded
	}
	return s.changeErr(s.m.st.notify(s.id, s.ref, f))
}

// SetIdleTimeout gives the session its own idle timeout, overriding
// Config.IdleTimeout (Twisted's per-class sessionTimeout). It takes effect at
// once: the idle deadline becomes the last touch plus d, so a shorter timeout
// can end the session at once. d is rounded up to whole ticks; it must be
// positive and at most MaxTimeout and 2^32-1 ticks, or SetIdleTimeout
// reports ErrInvalidTimeout.
func (s Session) SetIdleTimeout(d time.Duration) error {
	if s.m == nil {
		return ErrEnded
	}
	t := s.m.cfg.Tick
	if !validTimeout(d, t) {
		return ErrInvalidTimeout
	}
	return s.changeErr(s.m.st.setIdle(s.id, s.ref, uint32(ticks(d, t))))
}

// IdleTimeout returns the session's idle timeout (its own, or the
// manager's), rounded up to whole ticks, or 0 if it has ended.
func (s Session) IdleTimeout() time.Duration {
	if s.m == nil {
		return 0
	}
	d, _ := s.m.st.idleTimeout(s.id, s.ref)
	return d
}

// CreatedAt returns when the session was created, or the zero time if it
// has ended.
func (s Session) CreatedAt() time.Time {
	created, _, _, ok := s.times()
	if !ok {
		return time.Time{}
	}
	return s.m.tm.timeAt(created)
}

// LastAccess returns the start of the tick in which the session was last
// touched (or created): never after the touch, at most a tick before it. It
// is the zero time if the session has ended.
func (s Session) LastAccess() time.Time {
	_, access, _, ok := s.times()
	if !ok {
		return time.Time{}
	}
	return s.m.tm.timeAt(access)
}

// Deadline returns when the session ends unless touched again: the earlier
// of the end of the tick of its last touch plus its idle timeout, and its
// creation plus Config.AbsoluteTimeout rounded up to a whole tick; so
// between 0 and 1 tick after its timeout has passed. The session is alive
// exactly until then: lookups find it before its Deadline and never at or
// after it. It is the zero time if the session has ended.
func (s Session) Deadline() time.Time {
	_, _, end, ok := s.times()
	if !ok {
		return time.Time{}
	}
	return s.m.tm.timeAt(end)
}

func (s Session) times() (created, access, end int64, ok bool) {
	if s.m == nil {
		return 0, 0, 0, false
	}
	created, access, end, err := s.m.st.times(s.id, s.ref)
	return created, access, end, err == nil
}
