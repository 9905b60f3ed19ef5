package sessions

import (
	"context"
	"math"
	"runtime"
	"time"
)

// sweepBatch bounds the sessions the driver handles per hold of a shard's
// lock: about 50 µs of work, so a lookup never waits long behind it.
const sweepBatch = 512

// file puts slot in its shard's wheel under the tick of end (a multiple of
// the tick), keeps the shard's due tick at or before it, and wakes the
// driver if its wake-up is set for later. The caller holds sh.mu.
func (m *Manager) file(sh *shard, slot uint32, end int64) {
	t := end / m.tickNs
	sh.wheel.Add(slot, t)
	if t < sh.due.Load() {
		sh.due.Store(t)
	}
	if t < m.armed.Load() && !m.manual {
		m.wakeDriver()
	}
}

func (m *Manager) wakeDriver() {
	select {
	case m.wake <- struct{}{}:
	default: // already awake or about to be
	}
}

// drive is the driver goroutine: it sleeps until the first tick at which a
// shard has something due (or until a session is filed under an earlier
// tick), ends what is due, and sleeps again. Ticks at which nothing ends
// cost nothing.
func (m *Manager) drive() {
	defer m.driver.Done()
	for {
		select {
		case <-m.stop:
			return
		case <-m.wake:
		}
		m.sweep()
		m.arm()
	}
}

// arm sets the driver's wake-up for the earliest due tick of any shard.
//
// armed is MaxInt64 while the shards are read, so that a session filed
// meanwhile under an earlier tick wakes the driver (file compares with
// armed after storing the shard's due tick; the atomics order the two), and
// the driver then arms again.
func (m *Manager) arm() {
	if m.manual {
		return
	}
	m.armed.Store(math.MaxInt64)
	next := int64(math.MaxInt64)
	for i := range m.shards {
		next = min(next, m.shards[i].due.Load())
	}
	m.armed.Store(next)
	m.timerMu.Lock()
	defer m.timerMu.Unlock()
	if m.closed.Load() {
		return
	}
	if m.wakeTimer != nil {
		m.wakeTimer.Stop()
		m.wakeTimer = nil
	}
	if next == math.MaxInt64 {
		return
	}
	var d time.Duration
	if next < math.MaxInt64/m.tickNs {
		d = time.Duration(next*m.tickNs - m.now())
	} else {
		d = time.Duration(math.MaxInt64)
	}
	m.wakeTimer = m.cfg.Clock.AfterFunc(max(d, 0), m.wakeDriver)
}

// Sweep ends, in the calling goroutine, every session whose end has come by
// the manager's clock (see Session.Deadline), and waits until no expiry
// callback is queued or running, including those of sessions that callbacks
// end. It returns the number of sessions it ended. The driver does the same
// by itself within a tick; Sweep is for tests that move a fake clock, and
// for callers who want the endings settled at a known point. It must not be
// called from an expiry callback.
func (m *Manager) Sweep() int {
	if m.closed.Load() {
		return 0
	}
	n := m.sweep()
	m.q.waitFinished()
	return n
}

func (m *Manager) sweep() int {
	m.sweepMu.Lock()
	defer m.sweepMu.Unlock()
	if m.closed.Load() {
		return 0 // Close ends the rest
	}
	t := m.tickOf(m.now())
	n := 0
	for i := range m.shards {
		if sh := &m.shards[i]; sh.due.Load() <= t {
			n += m.sweepShard(sh, t)
		}
	}
	return n
}

// sweepShard ends what is due in one shard by tick t, in batches of at most
// sweepBatch wheel entries per hold of its lock. An entry whose session was
// touched since it was filed is filed again at its real end, which is after
// tick t (timemodel.go), so the loop ends. It stops early when the manager
// is closing.
func (m *Manager) sweepShard(sh *shard, t int64) int {
	ended := 0
	for {
		b := m.newBatch()
		sh.mu.Lock()
		start := time.Now()
		now := m.now() // under the lock: after every touch it orders before
		more := false
		for i := 0; ; i++ {
			if i == sweepBatch {
				more = true
				break
			}
			slot, _, ok := sh.wheel.Poll(t)
			if !ok {
				break
			}
			r := sh.rec(slot)
			end, why := m.endOf(sh, slot, r)
			if now < end {
				sh.wheel.Add(slot, end/m.tickNs)
				sh.stats.refiles++
				continue
			}
			m.lateness.observe(time.Duration(now - end))
			b = m.end(sh, slot, -1, why, now, b, false)
			ended++
		}
		if !more {
			sh.settle()
		}
		m.maxHold.observe(time.Since(start))
		sh.mu.Unlock()
		m.dispatch(b, true)
		if !more {
			return ended
		}
		select {
		case <-m.stop:
			return ended
		default:
		}
		// Yield between batches, with no lock held: a goroutine that runs
		// for 10 ms is preempted wherever it is, and a driver preempted
		// inside a batch holds the shard's lock for the whole time slice of
		// whatever runs instead (measured: 2-15 ms holds without this).
		runtime.Gosched()
	}
}

// Close stops the driver and ends every session still alive with reason
// Shutdown, so that their callbacks run (unless Config.DiscardOnClose); a
// session whose deadline has already passed ends as Idle (or Absolute), as
// it would have a moment later. Then it waits for all callbacks to return
// or for ctx to be done, whichever comes first, and returns ctx's error in
// the second case (the callbacks go on in the background). After Close,
// Create and Renew return ErrClosed, lookups find nothing, and a second
// Close returns ErrClosed. Close must not be called from an expiry callback.
func (m *Manager) Close(ctx context.Context) error {
	m.timerMu.Lock()
	if m.closed.Load() {
		m.timerMu.Unlock()
		return ErrClosed
	}
	// From here Create fails: it checks closed under the shard lock, and
	// the loop below takes every shard's lock after this store.
	m.closed.Store(true)
	if m.wakeTimer != nil {
		m.wakeTimer.Stop()
	}
	m.timerMu.Unlock()
	m.q.stopWaiting() // a driver waiting for room in the queue goes on
	close(m.stop)
	m.driver.Wait()

	m.sweepMu.Lock()
	for i := range m.shards {
		m.shutdownShard(&m.shards[i])
	}
	m.sweepMu.Unlock()
	m.q.close()

	done := make(chan struct{})
	go func() {
		m.workers.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *Manager) shutdownShard(sh *shard) {
	for slot := uint32(0); ; {
		var b []ending
		sh.mu.Lock()
		now := m.now()
		for n := 0; slot < sh.used && n < sweepBatch; slot++ {
			r := sh.rec(slot)
			if r.gen&stateMask != stateLive {
				continue
			}
			n++
			if m.cfg.DiscardOnClose {
				sh.wheel.Remove(slot)
				sh.unindexSlot(r.id, slot, -1)
				m.live.Add(-1)
				sh.stats.discarded++
				sh.release(slot)
				continue
			}
			b, _ = m.endBy(sh, slot, -1, Shutdown, now, b, false)
		}
		last := slot >= sh.used
		sh.mu.Unlock()
		m.dispatch(b, false)
		if last {
			return
		}
	}
}
