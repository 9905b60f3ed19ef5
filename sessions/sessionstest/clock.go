// Package sessionstest provides a fake clock for tests of code that uses
// package sessions, so that they move time by hand instead of sleeping, and
// Store, a fake shared store that several managers in one test share as
// processes share Redis.
//
// Typical use:
//
//	clock := sessionstest.NewClock(time.Time{})
//	m, _ := sessions.New(sessions.Config{IdleTimeout: time.Minute, Clock: clock})
//	s, _ := m.Create()
//	clock.Advance(time.Minute + time.Second)
//	m.Sweep() // the session has ended and its callbacks have run
package sessionstest

import (
	"slices"
	"sync"
	"time"
)

// A Clock is a fake clock: its time moves only when Advance or Set is called.
// It satisfies sessions.Clock. It is safe for concurrent use.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	seq    uint64
	timers []*timer
}

// defaultStart is the time a Clock made with a zero start begins at: a
// fixed date, so that tests print the same times on every run.
var defaultStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// NewClock returns a fake clock set to start, or to 2026-01-01 00:00 UTC if
// start is zero.
func NewClock(start time.Time) *Clock {
	if start.IsZero() {
		start = defaultStart
	}
	return &Clock{now: start}
}

type timer struct {
	c    *Clock
	when time.Time
	seq  uint64
	f    func()
}

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc arranges for f to be called, in the goroutine that moves the
// clock, once the clock has moved d past its current time.
func (c *Clock) AfterFunc(d time.Duration, f func()) interface{ Stop() bool } {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &timer{c: c, when: c.now.Add(d), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
}

// Stop cancels the timer and reports whether it was still pending.
func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	i := slices.Index(t.c.timers, t)
	if i < 0 {
		return false
	}
	t.c.timers = slices.Delete(t.c.timers, i, i+1)
	return true
}

// Advance moves the clock forward by d, calling the functions of the timers
// that fall due on the way, each at its own time (Now returns the timer's
// time while it runs), in order: what a clock does for a process that keeps
// up. A timer started by one of them that falls due within d is called too.
// A negative d moves the clock back and calls nothing, as a wall clock may.
// To move far with a fine periodic timer (days of millisecond ticks), use
// Jump.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now.Add(d)
	if d < 0 {
		c.now = target
	}
	c.mu.Unlock()
	for c.fire(target, true) {
	}
	c.mu.Lock()
	if c.now.Before(target) {
		c.now = target
	}
	c.mu.Unlock()
}

// Jump moves the clock forward by d at once and then calls the functions of
// the timers that are due, late, each once, seeing the new time: what a
// process sees after its machine was suspended, or after it was starved of
// CPU so that its timers ran late.
func (c *Clock) Jump(d time.Duration) { c.Set(c.Now().Add(d)) }

// Skip moves the clock forward by d without calling the timers that fall
// due, as if the process were too busy to run them: the next Advance, Jump
// or Set calls them, late.
func (c *Clock) Skip(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t at once, as Jump does.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
	for c.fire(t, false) {
	}
}

// Pending returns the number of timers not yet called or stopped.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// fire calls the earliest timer due by target, moving the clock to its time
// first if step is set, and reports whether there was one.
func (c *Clock) fire(target time.Time, step bool) bool {
	c.mu.Lock()
	var due *timer
	for _, t := range c.timers {
		if !t.when.After(target) && (due == nil || t.when.Before(due.when) || t.when.Equal(due.when) && t.seq < due.seq) {
			due = t
		}
	}
	if due == nil {
		c.mu.Unlock()
		return false
	}
	c.timers = slices.DeleteFunc(c.timers, func(t *timer) bool { return t == due })
	if step && due.when.After(c.now) {
		c.now = due.when
	}
	c.mu.Unlock()
	due.f() // outside the lock: f may read the clock and start timers
	return true
}
