package sessions

import (
	"context"
	"runtime"
	"time"
)

// sweepBatch bounds the sessions the driver handles per hold of a shard's
// lock: about 50 µs of work, so a lookup never waits long behind it.
const sweepBatch = 512

// onTick publishes the next tick a little before it begins (Manager.lead
// before), arms a wake-up of the driver for the moment it begins if a shard
// has something due then, and arms itself for the next tick. It is the only
// periodic work: one atomic store and a look at each shard's due tick, so
// empty ticks cost nothing more.
//
// Publishing early dates the touches of the tick's last moments by the next
// tick: they live up to lead longer, which is safe, where a tick published
// late would date touches too early (see lagRing). Sweeping from the start
// of the tick, not before, lets sessions due then end at the first look.
//
// tickMu makes Close wait for a run in progress and keeps a run that starts
// after Close from re-arming.
func (m *Manager) onTick() {
	m.tickMu.Lock()
	defer m.tickMu.Unlock()
	if m.closed.Load() {
		return
	}
	now := m.cfg.Clock.Now()
	m.publish(now, m.lead)
	t := m.tick.Load()
	for i := range m.shards {
		if m.shards[i].due.Load() <= t {
			m.wakeTimer = m.cfg.Clock.AfterFunc(max(0, m.timeOf(t).Sub(now)), m.wakeDriver)
			break
		}
	}
	next := m.timeOf(t + 1).Add(-m.lead)
	m.timer = m.cfg.Clock.AfterFunc(next.Sub(now), m.onTick)
}

func (m *Manager) wakeDriver() {
	select {
	case m.wake <- struct{}{}:
	default: // already awake or about to be
	}
}

// drive is the driver goroutine: it sleeps until onTick says a shard has
// something due.
func (m *Manager) drive() {
	defer m.driver.Done()
	for {
		select {
		case <-m.stop:
			return
		case <-m.wake:
			m.sweep()
		}
	}
}

// Sweep ends, in the calling goroutine, every session whose deadline has
// passed by the manager's clock, and waits until no expiry callback is
// queued or running, including those of sessions that callbacks end. It returns the number of sessions it ended.
// The driver does the same by itself within a tick; Sweep is for tests that
// move a fake clock, and for callers who want the endings settled at a known
// point. It must not be called from an expiry callback.
func (m *Manager) Sweep() int {
	m.tickMu.Lock()
	if m.closed.Load() {
		m.tickMu.Unlock()
		return 0
	}
	m.publish(m.cfg.Clock.Now(), 0)
	m.tickMu.Unlock()
	n := m.sweep()
	m.q.waitFinished()
	return n
}

func (m *Manager) sweep() int {
	m.sweepMu.Lock()
	defer m.sweepMu.Unlock()
	// The tick of the clock, not the published one, which runs ahead by
	// up to lead: sessions due at a tick not yet begun would be looked at
	// too soon and filed again.
	now := min(m.tick.Load(), m.tickOf(m.cfg.Clock.Now()))
	n := 0
	for i := range m.shards {
		if sh := &m.shards[i]; sh.due.Load() <= now {
			n += m.sweepShard(sh, now)
		}
	}
	return n
}

// sweepShard ends what is due in one shard, in batches of at most
// sweepBatch wheel entries per hold of its lock. An entry whose session was
// touched since it was filed is filed again at its real deadline.
func (m *Manager) sweepShard(sh *shard, now int64) int {
	ended := 0
	for {
		b := m.newBatch()
		at := m.cfg.Clock.Now()
		sh.mu.Lock()
		start := time.Now()
		more := false
		for i := 0; ; i++ {
			if i == sweepBatch {
				more = true
				break
			}
			slot, _, ok := sh.wheel.Poll(now)
			if !ok {
				break
			}
			r := sh.rec(slot)
			dl, _ := m.deadline(sh, slot, r)
			if dl > now {
				sh.wheel.Add(slot, dl)
				sh.stats.refiles++
				continue
			}
			over, reason, end := m.ended(sh, slot, r, at)
			if !over {
				// The tick of its last touch was published late: the
				// touch may have come later than the tick says.
				sh.wheel.Add(slot, m.tickOf(end)+1)
				sh.stats.refiles++
				continue
			}
			m.lateness.observe(at.Sub(end))
			b = m.end(sh, slot, -1, reason, now, b)
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
		// Yield between batches, with no lock held: a goroutine that runs
		// for 10 ms is preempted wherever it is, and a driver preempted
		// inside a batch holds the shard's lock for the whole time slice of
		// whatever runs instead (measured: 2-15 ms holds without this).
		runtime.Gosched()
	}
}

// Close stops the driver and ends every session still alive with reason
// Shutdown, so that their callbacks run (unless Config.DiscardOnClose), then
// waits for all callbacks to return or for ctx to be done, whichever comes
// first, and returns ctx's error in the second case. After Close, Create and
// Renew return ErrClosed, lookups find nothing, and a second Close returns
// ErrClosed. Close must not be called from an expiry callback.
func (m *Manager) Close(ctx context.Context) error {
	m.tickMu.Lock()
	if m.closed.Load() {
		m.tickMu.Unlock()
		return ErrClosed
	}
	// From here Create fails: it checks closed under the shard lock, and
	// the loop below takes every shard's lock after this store.
	m.closed.Store(true)
	for _, t := range []Timer{m.timer, m.wakeTimer} {
		if t != nil {
			t.Stop()
		}
	}
	m.tickMu.Unlock()
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
		now := m.tick.Load()
		for n := 0; slot < sh.used && n < sweepBatch; slot++ {
			r := sh.rec(slot)
			if r.gen&stateMask != stateLive {
				continue
			}
			sh.wheel.Remove(slot)
			n++
			if m.cfg.DiscardOnClose {
				if _, pos, ok := sh.find(r.id); ok {
					sh.unindex(pos)
				}
				m.live.Add(-1)
				sh.stats.discarded++
				sh.release(slot)
				continue
			}
			b = m.end(sh, slot, -1, Shutdown, now, b)
		}
		last := slot >= sh.used
		sh.mu.Unlock()
		m.dispatch(b, false)
		if last {
			return
		}
	}
}
