package sessions

import (
	"sync/atomic"
	"time"
)

// A lagRing remembers, for each recent tick, how long after the tick's end
// it was still the published tick: a touch dated by tick a happened before
// the end of a plus that lag. The manager's timer publishes each tick at its
// start, so the lag is normally microseconds, but a starved process (all Ps
// busy, a long GC) runs timers late, by tens of milliseconds measured here.
// Endings take the lag into account, so that a session does not end before
// its timeout has passed in real time since its last touch.
//
// The credit is capped at MaxTimerLag. A longer lag is a process that was
// frozen (a suspended VM, a stopped debugger), not one that went on taking
// requests, and after it the sessions due should end, not live one more
// timeout each. A touch during a lag longer than the cap can end up to the
// excess early.
//
// The ring covers the last len(ticks) ticks; a tick that has fallen out of
// it gets the worst lag ever seen, which errs on the late side. One
// goroutine writes (under Manager.tickMu); any may read.
type lagRing struct {
	ticks []atomic.Int64
	lags  []atomic.Int64
	worst atomic.Int64
}

// newLagRing returns a ring covering at least span ticks, within bounds
// that keep it between 1 and 1024 KiB.
func newLagRing(span int64) *lagRing {
	n := 64
	for int64(n) < span && n < 1<<16 {
		n <<= 1
	}
	r := &lagRing{ticks: make([]atomic.Int64, n), lags: make([]atomic.Int64, n)}
	for i := range r.ticks {
		r.ticks[i].Store(-1 << 63)
	}
	return r
}

func (r *lagRing) record(tick int64, lag time.Duration) {
	lag = min(max(lag, 0), MaxTimerLag)
	i := tick & int64(len(r.ticks)-1)
	// A reader that sees the tick before and after reading the lag has a
	// lag that belongs to it.
	r.ticks[i].Store(-1 << 63)
	r.lags[i].Store(int64(lag))
	r.ticks[i].Store(tick)
	if int64(lag) > r.worst.Load() {
		r.worst.Store(int64(lag))
	}
}

func (r *lagRing) lag(tick int64) time.Duration {
	i := tick & int64(len(r.ticks)-1)
	if r.ticks[i].Load() == tick {
		v := r.lags[i].Load()
		if r.ticks[i].Load() == tick {
			return time.Duration(v)
		}
	}
	return time.Duration(r.worst.Load())
}
