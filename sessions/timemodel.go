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

// A timeModel is the manager's clock and the arithmetic above; the
// manager and its store share one.
type timeModel struct {
	clock   Clock
	sys     bool      // clock is the system clock: read it with time.Since
	epoch   time.Time // time 0
	tick    int64     // Config.Tick in ns
	maxTick int64     // MaxInt64 / tick: ticks beyond it saturate
	idle    int64     // Config.IdleTimeout rounded up to whole ticks, in ns
	abs     int64     // Config.AbsoluteTimeout in ns; 0: none
}

func newTimeModel(cfg Config) *timeModel {
	tm := &timeModel{
		clock:   cfg.Clock,
		epoch:   cfg.Clock.Now(),
		tick:    int64(cfg.Tick),
		maxTick: math.MaxInt64 / int64(cfg.Tick),
		idle:    ticks(cfg.IdleTimeout, cfg.Tick) * int64(cfg.Tick),
		abs:     int64(cfg.AbsoluteTimeout),
	}
	_, tm.sys = cfg.Clock.(systemClock)
	return tm
}

// now returns the time: nanoseconds since the epoch.
func (tm *timeModel) now() int64 {
	if tm.sys {
		return int64(time.Since(tm.epoch))
	}
	return int64(tm.clock.Now().Sub(tm.epoch))
}

// timeAt converts a time back to a time.Time.
func (tm *timeModel) timeAt(ns int64) time.Time { return tm.epoch.Add(time.Duration(ns)) }

// endsAt returns when a session ends (a multiple of the tick) and why, given
// the tick of its last touch, the time of its creation and its own idle
// timeout in ticks (0: the manager's). A touch moves it later.
func (tm *timeModel) endsAt(access, born int64, ownIdle uint32) (end int64, why Reason) {
	idle := tm.idle
	if ownIdle != 0 {
		idle = int64(ownIdle) * tm.tick
	}
	end, why = addSat(tm.tickStart(access+1), idle), Idle
	if tm.abs > 0 {
		if a := tm.roundUp(addSat(born, tm.abs)); a <= end {
			end, why = a, Absolute
		}
	}
	return end, why
}

// roundUp rounds t up to a multiple of the tick (saturating).
func (tm *timeModel) roundUp(t int64) int64 {
	q := t / tm.tick
	if t%tm.tick > 0 {
		q++
	}
	return tm.tickStart(q)
}

// tickOf returns the tick that time t falls in: floor(t / Tick).
func (tm *timeModel) tickOf(t int64) int64 {
	q := t / tm.tick
	if t%tm.tick < 0 {
		q--
	}
	return q
}

// tickStart returns the time tick t begins at, saturating: a multiply and
// a compare (maxTick is computed once), since it is on the touch path.
func (tm *timeModel) tickStart(t int64) int64 {
	if t > tm.maxTick {
		return tm.maxTick * tm.tick
	}
	if t < -tm.maxTick {
		return -tm.maxTick * tm.tick
	}
	return t * tm.tick
}

// touchTick returns the tick to store for a touch at now in a record whose
// stored tick is access: the tick of now, or access if that is not later.
// It divides only when the tick has changed, at most once per tick.
func (tm *timeModel) touchTick(access, now int64) int64 {
	if now < tm.tickStart(access+1) {
		return access
	}
	return max(access, tm.tickOf(now))
}

// addSat adds a non-negative d to t, saturating instead of overflowing.
func addSat(t, d int64) int64 {
	if s := t + d; s >= t {
		return s
	}
	return math.MaxInt64
}
