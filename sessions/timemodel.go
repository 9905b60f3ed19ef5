package sessions

import (
	"math"
	"time"
)

// The time model, in one place.
//
// Every time the engine keeps is an int64 count of nanoseconds since the
// manager's epoch (its clock's reading when New ran): a session's creation,
// its last touch, its end. A session ends at
//
//	end = roundUp(min(lastTouch + idle timeout, creation + AbsoluteTimeout))
//
// where roundUp goes to the next multiple of Config.Tick, and it is alive at
// time t exactly when t < end. This one predicate (expired) decides for
// lookups, touches, Expire, Renew, Range, the driver, Sweep and Close.
//
// Why no session ends early: a touch reads the clock while it holds the
// session's shard lock, and stores the later of that reading and the one
// already stored, so the stored last touch is never before a touch that has
// returned true. Every decision that a session has ended is taken under the
// same lock with a later reading of the same (monotonic) clock, and requires
// it to be at or past end, which is at or past lastTouch + idle timeout.
//
// Why it ends at most one tick late (plus scheduling delay): the session is
// filed in its shard's timing wheel under the tick end/Tick. The driver
// polls the wheel at floor(now/Tick), so it sees the entry as soon as the
// clock reaches end, and not before; if the session was touched since it
// was filed, its end has moved to a later tick than the one polled and the
// entry is filed again there (lazy touching: a touch never moves the entry).
//
// A touch costs one clock read: about 25 ns for the system clock's
// monotonic reading (time.Since of a monotonic epoch), taken under the shard
// lock so that touches of one session are ordered with each other and with
// its ending.

// now returns the manager's time: nanoseconds since its epoch.
func (m *Manager) now() int64 {
	if m.sysClock {
		return int64(time.Since(m.epoch))
	}
	return int64(m.cfg.Clock.Now().Sub(m.epoch))
}

// timeAt converts a manager time back to a time.Time.
func (m *Manager) timeAt(ns int64) time.Time { return m.epoch.Add(time.Duration(ns)) }

// endOf returns when the session in slot ends (a multiple of the tick) and
// why, as it stands: a touch moves it later.
func (m *Manager) endOf(sh *shard, slot uint32, r *record) (end int64, why Reason) {
	idle := m.idle
	if r.idle != 0 {
		idle = int64(r.idle) * m.tickNs
	}
	end, why = addSat(r.access, idle), Idle
	if m.abs > 0 {
		if a := addSat(*sh.born(slot), m.abs); a <= end {
			end, why = a, Absolute
		}
	}
	return m.roundUp(end), why
}

// expired reports whether the session in slot has ended by time now, and
// why it ends.
func (m *Manager) expired(sh *shard, slot uint32, r *record, now int64) (bool, Reason) {
	end, why := m.endOf(sh, slot, r)
	return now >= end, why
}

// roundUp rounds t up to a multiple of the tick (saturating).
func (m *Manager) roundUp(t int64) int64 {
	q := t / m.tickNs
	if t%m.tickNs > 0 {
		q++
	}
	if q > math.MaxInt64/m.tickNs {
		return math.MaxInt64 / m.tickNs * m.tickNs
	}
	return q * m.tickNs
}

// tickOf returns the tick that time t falls in: floor(t / Tick).
func (m *Manager) tickOf(t int64) int64 {
	q := t / m.tickNs
	if t%m.tickNs < 0 {
		q--
	}
	return q
}

// addSat adds a non-negative d to t, saturating instead of overflowing.
func addSat(t, d int64) int64 {
	if s := t + d; s >= t {
		return s
	}
	return math.MaxInt64
}
