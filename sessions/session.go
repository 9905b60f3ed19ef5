package sessions

import "time"

// A Session is a handle to a session: a small value (the manager, the ID and
// the session's place in the table), not a pointer to it, so that millions of
// idle sessions cost the garbage collector nothing. Copy it freely.
//
// Once the session has ended, or has been renewed under another ID, its
// methods report ErrEnded (or zero values); a handle never reaches another
// session's data, even after its slot is reused. While the session's expiry
// callbacks run, its values and times can still be read, but not changed.
// The zero Session is a handle to no session.
type Session struct {
	m     *Manager
	id    ID
	slot  uint32
	gen   uint32
	shard uint16
}

// ID returns the session's ID.
func (s Session) ID() ID { return s.id }

// String returns the session's ID in text form.
func (s Session) String() string { return s.id.String() }

// lock locks the session's shard and returns its record and the time if
// the handle still names the session: live (and not past its end) when live
// is true, or live or ending otherwise. On error nothing is left locked.
func (s Session) lock(live bool) (*shard, *record, int64, error) {
	if s.m == nil {
		return nil, nil, 0, ErrEnded
	}
	sh := &s.m.shards[s.shard]
	sh.mu.Lock()
	r := sh.rec(s.slot)
	// The generation tells a reused slot apart; the ID as well, since a
	// slot reused 2^30 times wraps the generation.
	if r.gen&^stateMask == s.gen && r.id == s.id {
		switch r.gen & stateMask {
		case stateEnding:
			if !live {
				return sh, r, 0, nil
			}
		case stateLive:
			if !live {
				return sh, r, 0, nil
			}
			now := s.m.now()
			if gone, _ := s.m.expired(sh, s.slot, r, now); !gone {
				return sh, r, now, nil
			}
		}
	}
	sh.mu.Unlock()
	if live && s.m.closed.Load() {
		return nil, nil, 0, ErrClosed
	}
	return nil, nil, 0, ErrEnded
}

// Alive reports whether the session is alive: not ended and not past its
// deadline.
func (s Session) Alive() bool {
	sh, _, _, err := s.lock(true)
	if err != nil {
		return false
	}
	sh.mu.Unlock()
	return true
}

// Touch keeps the session alive: its idle deadline moves to its idle timeout
// from now.
func (s Session) Touch() error {
	sh, r, now, err := s.lock(true)
	if err != nil {
		return err
	}
	sh.stats.touches++
	r.access = s.m.touchTick(r.access, now)
	sh.mu.Unlock()
	return nil
}

// Expire ends the session now with reason Explicit (a logout); its
// callbacks run on the manager's workers. Ending is idempotent: a session
// that has already ended, or whose deadline has passed, is left to the
// driver and Expire reports ErrEnded.
func (s Session) Expire() error {
	sh, _, now, err := s.lock(true)
	if err != nil {
		return err
	}
	b, _ := s.m.endBy(sh, s.slot, -1, Explicit, now, nil, false)
	sh.mu.Unlock()
	s.m.dispatch(b, false)
	return nil
}

// Get returns the value stored under key, ErrNoValue if there is none, or
// ErrEnded. It works in the session's expiry callbacks too.
func (s Session) Get(key string) (any, error) {
	sh, _, _, err := s.lock(false)
	if err != nil {
		return nil, err
	}
	defer sh.mu.Unlock()
	if ex := sh.extra(s.slot, false); ex != nil {
		if v, ok := ex.values[key]; ok {
			return v, nil
		}
	}
	return nil, ErrNoValue
}

// Set stores value under key. Values live in memory with the session and
// are dropped when it ends, after its callbacks have run.
func (s Session) Set(key string, value any) error {
	sh, _, _, err := s.lock(true)
	if err != nil {
		return err
	}
	ex := sh.extra(s.slot, true)
	if ex.values == nil {
		ex.values = map[string]any{}
	}
	ex.values[key] = value
	sh.mu.Unlock()
	return nil
}

// Delete removes the value under key, if any.
func (s Session) Delete(key string) error {
	sh, _, _, err := s.lock(true)
	if err != nil {
		return err
	}
	if ex := sh.extra(s.slot, false); ex != nil {
		delete(ex.values, key)
	}
	sh.mu.Unlock()
	return nil
}

// NotifyOnExpire registers f to be called once when the session ends, for
// whatever reason, including Expire (Twisted's notifyOnExpire). Callbacks
// run in registration order, then Config.OnExpire, on the manager's worker
// pool with no engine lock held; they may call any method of the manager.
// A callback that panics is recovered and counted, and the others still
// run. A nil f is ignored.
func (s Session) NotifyOnExpire(f func(Session, Reason)) error {
	sh, _, _, err := s.lock(true)
	if err != nil {
		return err
	}
	if f != nil {
		ex := sh.extra(s.slot, true)
		ex.notify = append(ex.notify, f)
	}
	sh.mu.Unlock()
	return nil
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
	sh, r, _, err := s.lock(true)
	if err != nil {
		return err
	}
	r.idle = uint32(ticks(d, t))
	// A later end is found lazily when the wheel entry comes due; an
	// earlier one must move the entry.
	end, _ := s.m.endOf(sh, s.slot, r)
	if filed, ok := sh.wheel.When(s.slot); ok && end/s.m.tickNs < filed {
		s.m.file(sh, s.slot, end)
	}
	sh.mu.Unlock()
	return nil
}

// IdleTimeout returns the session's idle timeout (its own, or the
// manager's), rounded up to whole ticks, or 0 if it has ended.
func (s Session) IdleTimeout() time.Duration {
	sh, r, _, err := s.lock(false)
	if err != nil {
		return 0
	}
	defer sh.mu.Unlock()
	if r.idle != 0 {
		return time.Duration(r.idle) * s.m.cfg.Tick
	}
	return time.Duration(s.m.idle)
}

// CreatedAt returns when the session was created, or the zero time if it
// has ended.
func (s Session) CreatedAt() time.Time {
	return s.times(func(sh *shard, r *record) int64 { return *sh.born(s.slot) })
}

// LastAccess returns the start of the tick in which the session was last
// touched (or created): never after the touch, at most a tick before it. It
// is the zero time if the session has ended.
func (s Session) LastAccess() time.Time {
	return s.times(func(_ *shard, r *record) int64 { return s.m.tickStart(r.access) })
}

// Deadline returns when the session ends unless touched again: the earlier
// of the end of the tick of its last touch plus its idle timeout, and its
// creation plus Config.AbsoluteTimeout rounded up to a whole tick; so
// between 0 and 1 tick after its timeout has passed.
// The session is alive exactly until then: lookups find it before its
// Deadline and never at or after it. It is the zero time if the session has
// ended.
func (s Session) Deadline() time.Time {
	return s.times(func(sh *shard, r *record) int64 {
		end, _ := s.m.endOf(sh, s.slot, r)
		return end
	})
}

func (s Session) times(f func(*shard, *record) int64) time.Time {
	sh, r, _, err := s.lock(false)
	if err != nil {
		return time.Time{}
	}
	t := f(sh, r)
	sh.mu.Unlock()
	return s.m.timeAt(t)
}
