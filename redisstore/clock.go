package redisstore

import (
	"sync"
	"sync/atomic"
	"time"
)

// The one clock is Redis's: scripts read TIME and every deadline is in its
// milliseconds. A lookup, though, decides "alive?" and "must this touch
// write?" without a script, from an estimate of Redis's time made of this
// process's monotonic clock plus an offset. Every script replies with the
// `now` it read, somewhere between the moment the call was sent and the
// moment its reply arrived, which bounds the offset on both sides:
//
//	now - receive  <=  offset  <=  now + 1 ms - send
//
// (TIME is truncated to the millisecond, hence the 1 ms). The lower bound
// decides "alive": a session whose deadline is at or below the lowest
// Redis time possible has certainly passed it, so a lookup may call an
// overdue session alive (late is allowed) but never a live one dead. The
// upper bound decides a touch's write: if the highest Redis time possible
// plus the idle timeout would pass the deadline, the touch writes, so no
// session ever ends early for want of one.
//
// The bounds are kept per bucket, because in a cluster a bucket lives on
// one master, whose clock is the one that dates the bucket's deadlines
// (and a failover may bring another). A sample replaces the kept one when
// it is at least as tight or the kept one is older than a second, so that
// the estimate follows a clock that drifts or steps.
type clock struct {
	known  atomic.Bool
	lo, hi atomic.Int64 // offsets, µs: Redis time minus local monotonic time

	at    atomic.Int64 // local µs of the kept sample
	mu    sync.Mutex   // orders writers
	width int64
}

// staleClock is how old the kept sample may be before a lookup refreshes
// it (claims refresh every bucket's far more often, when they run).
const staleClock = 5 * time.Second

// mono is the local monotonic time in µs since the store was made.
func (s *Store) mono() int64 { return time.Since(s.start).Microseconds() }

// observe records a reply's Redis time (ms) for a call sent at send and
// answered at recv (local µs).
func (c *clock) observe(nowMs, send, recv int64) {
	lo := nowMs*1000 - recv
	hi := nowMs*1000 + 1000 - send
	c.mu.Lock()
	if !c.known.Load() || hi-lo <= c.width || recv-c.at.Load() > int64(time.Second/time.Microsecond) {
		c.width = hi - lo
		c.at.Store(recv)
		c.lo.Store(lo)
		c.hi.Store(hi)
		c.known.Store(true)
	}
	c.mu.Unlock()
}

// fresh reports whether the clock has a sample younger than staleClock.
func (c *clock) fresh(nowLocal int64) bool {
	if !c.known.Load() {
		return false
	}
	return nowLocal-c.at.Load() < int64(staleClock/time.Microsecond)
}

// redisNow returns the lowest and highest Redis time possible now, in µs.
func (s *Store) redisNow(b int) (lo, hi int64) {
	m := s.mono()
	c := &s.clocks[b]
	return m + c.lo.Load(), m + c.hi.Load()
}

// A touching lookup that must write costs one round trip if it knows so
// before it reads: it then runs lookupTouchScript, which reads, decides and
// writes at once, instead of an HMGET followed by touchScript. Whether a
// session's touch will write is a function of its deadline minus its idle
// timeout, the Redis time after which its next touch writes ("due to
// write"); the hints remember that time per session, as this process last
// read it, in a fixed array (hintSlots words, 256 KiB per Store)
// direct-mapped by the session ID's random bits: a hint may be lost to a
// colliding session, stale, or torn, and then only costs a round trip,
// because both paths decide against Redis's state and never against the hint.
const hintSlots = 1 << 15

// A slot packs a 24-bit tag of the ID above the due-to-write time in ms,
// modulo 2^40 (34 years; compared modulo the same).
const (
	hintTimeBits = 40
	hintTimeMask = 1<<hintTimeBits - 1
)

// hints holds one word per slot: tag<<40 | due-to-write ms mod 2^40.
type hints []atomic.Uint64

func hintSlot(id [16]byte) (slot int, tag uint64) {
	x := uint64(id[8]) | uint64(id[9])<<8 | uint64(id[10])<<16 | uint64(id[11])<<24 |
		uint64(id[12])<<32 | uint64(id[13])<<40 | uint64(id[14])<<48 | uint64(id[15])<<56
	return int(x % hintSlots), x >> 40
}

// put remembers that id's touch writes once Redis time passes dueMs.
func (h hints) put(id [16]byte, dueMs int64) {
	i, tag := hintSlot(id)
	// Stored only if changed: most lookups see the hint they already had,
	// and a store would take the cache line from the other cores.
	if v := tag<<hintTimeBits | uint64(dueMs)&hintTimeMask; h[i].Load() != v {
		h[i].Store(v)
	}
}

// What a hint says of a touch.
const (
	hintNone  = iota // no hint for the session (never seen, or lost to a collision)
	hintQuiet        // the touch writes nothing
	hintWrite        // the touch writes
)

// say returns what id's hint says of a touch at Redis time up to hiUs (µs).
func (h hints) say(id [16]byte, hiUs int64) int {
	i, tag := hintSlot(id)
	v := h[i].Load()
	if v>>hintTimeBits != tag {
		return hintNone
	}
	hiMs := uint64((hiUs + 999) / 1000)
	// due - hi, as a signed 40-bit number: not negative means hi <= due.
	if (v-hiMs)&hintTimeMask < 1<<(hintTimeBits-1) {
		return hintQuiet
	}
	return hintWrite
}
