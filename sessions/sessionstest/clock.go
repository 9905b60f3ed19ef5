// Package sessionstest provides a fake clock for tests of code that uses
// package sessions, so that they move time by hand instead of sleeping.
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

// Start is the time a Clock made with a zero start begins at.
var Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// NewClock returns a fake clock set to start, or to Start if start is zero.
func NewClock(start time.Time) *Clock {
	if start.IsZero() {
		start = Start
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

// Advance moves the clock forward by d and then calls, in order of their
// times, the functions of the timers that are due. They run in the caller's
// goroutine and see the new time; a timer they start that is due too is
// called before Advance returns. A negative d moves the clock back and calls
// nothing: what a wall clock may do, which the manager must survive.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	c.fire()
}

// Set moves the clock to t, like Advance(t.Sub(c.Now())).
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
	c.fire()
}

// Pending returns the number of timers not yet called or stopped.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

func (c *Clock) fire() {
	for {
		c.mu.Lock()
		var due *timer
		for _, t := range c.timers {
			if !t.when.After(c.now) && (due == nil || t.when.Before(due.when) || t.when.Equal(due.when) && t.seq < due.seq) {
				due = t
			}
		}
		if due == nil {
			c.mu.Unlock()
			return
		}
		c.timers = slices.DeleteFunc(c.timers, func(t *timer) bool { return t == due })
		c.mu.Unlock()
		due.f() // outside the lock: f may read the clock and start timers
	}
}
