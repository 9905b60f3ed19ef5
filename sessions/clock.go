package sessions

import "time"

// A Clock tells the manager the time and wakes it up. The default is the
// system clock; tests use a fake one (see package sessionstest) to move time
// by hand.
//
// The manager calls Now on every lookup, touch and ending, with a shard
// lock held (see the time model in the package doc); for the system clock it
// reads only the monotonic clock, about 25 ns. A fake clock must not call
// into the manager from Now.
type Clock interface {
	// Now returns the current time. Only differences between its results
	// matter; the system clock's monotonic reading keeps them right across
	// wall-clock jumps.
	Now() time.Time
	// AfterFunc calls f in its own goroutine (or, for a fake clock, in the
	// goroutine that moves time) once d has elapsed, unless stopped.
	AfterFunc(d time.Duration, f func()) Timer
}

// A Timer is a pending AfterFunc call. *time.Timer is one.
type Timer = interface {
	// Stop prevents the call if it has not happened and reports whether it
	// did so.
	Stop() bool
}

type systemClock struct{}

func (systemClock) Now() time.Time                            { return time.Now() }
func (systemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
