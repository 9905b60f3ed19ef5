package sessions

import (
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a manager's counters, for monitoring (package
// metrics exports them to Prometheus). Counters only grow; reading them costs
// one short lock per shard, and keeping them costs the hot paths nothing they
// did not already pay: each is either an atomic or a field of a shard that the
// path holds locked anyway.
type Stats struct {
	// Active is the number of live sessions.
	Active int
	// Created counts sessions created (Renew creates none).
	Created uint64
	// Ended counts endings, indexed by Reason.
	Ended [Evicted + 1]uint64
	// Discarded counts sessions dropped by Close under
	// Config.DiscardOnClose. Created + Restored = Active + the sum of Ended
	// + Discarded.
	Discarded uint64
	// Restored counts the sessions New read from Config.Restore, those
	// that ended at once included.
	Restored uint64
	// CreateFailedFull counts Create calls refused with ErrTooManySessions;
	// CreateFailedClosed those refused with ErrClosed.
	CreateFailedFull, CreateFailedClosed uint64
	// Renewed counts sessions moved to a new ID by Renew.
	Renewed uint64
	// Touches counts touches: Get, Touch, Session.Touch and Renew on a live
	// session.
	Touches uint64
	// LookupHits and LookupMisses count lookups by ID (Get, Peek, Touch);
	// LookupRejected counts text that GetString refused as malformed, which
	// never reaches the table.
	LookupHits, LookupMisses, LookupRejected uint64
	// Refiles counts wheel entries that came due for a session touched
	// since it was filed, and were filed again at its new deadline: the
	// whole cost of lazy touching.
	Refiles uint64
	// BucketVisits counts wheel buckets emptied by the driver: its work
	// apart from handling sessions, which grows with occupied buckets, not
	// with time.
	BucketVisits uint64
	// Owners is the number of owners with a live session (Session.SetOwner),
	// and OwnedSessions the number of live sessions that have an owner.
	Owners, OwnedSessions int
	// OwnerEvictions counts sessions ended with reason Evicted because
	// their owner was at Config.MaxPerOwner (they are in Ended[Evicted]
	// too, with those Config.Evict ended).
	OwnerEvictions uint64
	// CallbackPanics counts expiry callbacks that panicked (and were
	// recovered) or called runtime.Goexit; either way the other callbacks
	// ran.
	CallbackPanics uint64
	// CallbackQueue is the number of endings whose callbacks have not yet
	// finished.
	CallbackQueue int
	// OffHeapBytes is the memory the table holds outside the Go heap (its
	// large arrays on huge pages, where the operating system allows it),
	// which runtime.MemStats does not count: add it to HeapAlloc for the
	// memory the sessions take. Zero where the table lives on the heap.
	OffHeapBytes int64
	// MaxSweepHold is the longest time the driver has held a shard's lock
	// in one batch.
	MaxSweepHold time.Duration
	// Lateness is the distribution of how long after its end (see
	// Session.Deadline: the deadline rounded up to a whole tick) each idle
	// or absolute ending happened, in seconds: the driver's delay, not the
	// tick's coarseness.
	Lateness Histogram
	// Lifetime is the distribution of the time from creation to ending, in
	// seconds.
	Lifetime Histogram
	// CallbackDuration is the distribution of the time the callbacks of one
	// ending took together, in seconds.
	CallbackDuration Histogram
	// Store holds the counters of a shared store (Config.Store); it is zero
	// for sessions in memory. With a shared store, Active is the store's
	// count for all processes, and Created, Ended, Renewed, Touches and the
	// lookups count what this manager did: its creations, the endings it
	// claimed (an ending claimed again after a lapsed lease counts in each
	// claimer), its lookups. Refiles, BucketVisits, Lateness, Lifetime and
	// the owner gauges stay zero.
	Store StoreStats
}

// A Histogram is a distribution of observations in seconds.
type Histogram struct {
	// Bounds are the buckets' inclusive upper bounds, increasing.
	Bounds []float64
	// Counts[i] is the number of observations in bucket i: above
	// Bounds[i-1] and at most Bounds[i]. It has one more element than
	// Bounds, for observations above the last bound.
	Counts []uint64
	// Count is the number of observations and Sum their total.
	Count uint64
	Sum   float64
}

// LatenessBounds returns the bucket bounds of Stats.Lateness, in seconds.
// Lateness is expected within a tick (1 s by default, often 100 ms), so the
// buckets run from 1 ms to a minute; session lifetimes run from seconds to a
// working day; callbacks from 10 µs to 10 s. Each of these functions returns
// a new slice.
func LatenessBounds() []float64 {
	return []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60}
}

// LifetimeBounds returns the bucket bounds of Stats.Lifetime, in seconds.
func LifetimeBounds() []float64 {
	return []float64{1, 10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400}
}

// CallbackDurationBounds returns the bucket bounds of
// Stats.CallbackDuration, in seconds.
func CallbackDurationBounds() []float64 {
	return []float64{1e-5, 1e-4, 5e-4, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 10}
}

// histogram counts observations with atomics, so any goroutine may observe.
type histogram struct {
	bounds []float64
	limits []time.Duration // bounds as durations, compared without float conversion
	counts []atomic.Uint64
	sumNs  atomic.Int64
}

func newHistogram(bounds []float64) *histogram {
	h := &histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
	for _, b := range bounds {
		h.limits = append(h.limits, time.Duration(b*float64(time.Second)))
	}
	return h
}

func (h *histogram) observe(d time.Duration) {
	i := 0
	for i < len(h.limits) && d > h.limits[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNs.Add(int64(d))
}

func (h *histogram) snapshot() Histogram {
	out := Histogram{Bounds: h.bounds, Counts: make([]uint64, len(h.counts))}
	for i := range h.counts {
		out.Counts[i] = h.counts[i].Load()
		out.Count += out.Counts[i]
	}
	out.Sum = time.Duration(h.sumNs.Load()).Seconds()
	return out
}

// shardStats are counted under the shard's lock, so they cost a plain
// increment of a cache line the path already owns. A lookup that touches
// is both a hit and a touch but increments one counter.
type shardStats struct {
	touchHits uint64 // Get and Touch that found the session (first: on the lock's cache line)
	peekHits  uint64 // Peek that found the session
	misses    uint64
	touches   uint64 // Session.Touch
	created   uint64
	renewed   uint64
	refiles   uint64
	discarded uint64
	ended     [Evicted + 1]uint64
}

// maxDuration records the largest duration stored into it.
type maxDuration struct{ v atomic.Int64 }

func (m *maxDuration) observe(d time.Duration) {
	for {
		old := m.v.Load()
		if int64(d) <= old || m.v.CompareAndSwap(old, int64(d)) {
			return
		}
	}
}
