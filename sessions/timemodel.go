package sessions

import (
	"math"
	"time"
)

// The time model, in one place.
//
// Times are int64 counts of nanoseconds since the manager's epoch (its
// clock's reading when New ran), and ticks are floor(time / Config.Tick). A
// record keeps the tick of its session's last touch (or creation); the
// session ends at
//
//	end = min((lastTouchTick + 1)·Tick + idle timeout, roundUp(creation + AbsoluteTimeout))
//
// (the idle timeout is a whole number of ticks; roundUp goes to the next
// multiple of Tick), and it is alive at time t exactly when t < end. This one
// predicate (expired) decides for lookups, touches, Expire, Renew, Range, the
// driver, Sweep and Close; Session.Deadline reports end.
//
// Why no session ends early: a touch reads the clock while it holds the
// session's shard lock and stores the later of that reading's tick and the
// one already stored, so the stored tick is never before the tick of a touch
// that has returned true, and the touch happened before that tick's end,
// (lastTouchTick + 1)·Tick. Every decision that a session has ended is taken
// under the same lock with a later reading of the same (monotonic) clock,
// and requires it to be at or past end, which is past the touch plus the
// idle timeout.
//
// Why it ends at most one tick late (plus scheduling delay): the touch
// happened at or after lastTouchTick·Tick, so end is at most one tick after
// the touch plus the idle timeout. The session is filed in its shard's
// timing wheel under the tick end/Tick; the driver polls the wheel at
// floor(now/Tick), so it sees the entry as soon as the clock reaches end, and
// not before; if the session was touched since it was filed, its end has
// moved to a later tick than the one polled and the entry is filed again
// there (lazy touching: a touch never moves the entry).
//
// Keeping the tick, not the exact time, costs the guarantee nothing and
// saves a write: a touch stores only when the tick has changed, so a busy
// session's record is written at most once per tick. A touch costs one
// clock read, about 25 ns for the system clock's monotonic reading
// (time.Since of a monotonic epoch), taken under the shard lock so that
// touches of one session are ordered with each other and with its ending.

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
	end, why = addSat(m.tickStart(r.access+1), idle), Idle
	if m.abs > 0 {
		if a := m.roundUp(addSat(*sh.born(slot), m.abs)); a <= end {
			end, why = a, Absolute
		}
	}
	return end, why
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
	return m.tickStart(q)
}

// tickOf returns the tick that time t falls in: floor(t / Tick).
func (m *Manager) tickOf(t int64) int64 {
	q := t / m.tickNs
	if t%m.tickNs < 0 {
		q--
	}
	return q
}

// tickStart returns the time tick t begins at, saturating: a multiply and
// a compare (maxTick is computed once), since it is on the touch path.
func (m *Manager) tickStart(t int64) int64 {
	if t > m.maxTick {
		return m.maxTick * m.tickNs
	}
	if t < -m.maxTick {
		return -m.maxTick * m.tickNs
	}
	return t * m.tickNs
}

// touchTick returns the tick to store for a touch at now in a record whose
// stored tick is access: the tick of now, or access if that is not later.
// It divides only when the tick has changed, at most once per tick.
func (m *Manager) touchTick(access, now int64) int64 {
	if now < m.tickStart(access+1) {
		return access
	}
	return max(access, m.tickOf(now))
}

// addSat adds a non-negative d to t, saturating instead of overflowing.
func addSat(t, d int64) int64 {
	if s := t + d; s >= t {
		return s
	}
	return math.MaxInt64
}
