package sessions

import (
	"context"
	"math"
	"time"
)

// filed is the store's word that a session was filed under tick t: if the
// driver's wake-up is set for later, it is woken to set it again.
func (m *Manager) filed(t int64) {
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

// drive is the driver goroutine: it sleeps until the first tick at which
// something is due (or until a session is filed under an earlier tick),
// ends what is due, and sleeps again. Ticks at which nothing ends cost
// nothing.
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

// arm sets the driver's wake-up for the store's next due tick.
//
// armed is MaxInt64 while the store is asked, so that a session filed
// meanwhile under an earlier tick wakes the driver (filed compares with
// armed after the store has recorded the tick; the atomics order the two),
// and the driver then arms again.
func (m *Manager) arm() {
	if m.manual {
		return
	}
	m.armed.Store(math.MaxInt64)
	next := m.st.next()
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
	d := time.Duration(m.tm.tickStart(next) - m.tm.now())
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
	return m.st.sweep(func(b []ending, n int) {
		m.live.Add(-int64(n))
		m.dispatch(b, true)
	}, m.stop)
}

// Close stops the driver and ends every session still alive with reason
// Shutdown, so that their callbacks run (unless Config.DiscardOnClose); on
// a shared Store it ends none: it stops claiming, lets the claimed endings'
// callbacks run and be acknowledged, and leaves the sessions to the other
// processes. In memory, a
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
	m.closed.Store(true)
	if m.wakeTimer != nil {
		m.wakeTimer.Stop()
	}
	m.timerMu.Unlock()
	m.q.stopWaiting() // a driver waiting for room in the queue goes on
	close(m.stop)
	m.driver.Wait()

	m.sweepMu.Lock()
	m.st.shutdown(m.cfg.DiscardOnClose, func(b []ending, n int) {
		m.live.Add(-int64(n))
		m.dispatch(b, false)
	})
	m.sweepMu.Unlock()
	m.q.close()

	done := make(chan struct{})
	go func() {
		m.workers.Wait()
		if m.shared != nil {
			m.shared.s.Close() // after the last Ack
		}
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
