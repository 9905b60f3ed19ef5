package sessions

import (
	"sync"
	"time"
)

// dispatch hands a batch of endings to the workers. The driver waits
// (wait=true) while the backlog is at Config.QueueLen: backpressure that
// slows ending, never drops one. Every other caller may be a callback
// itself, so it never waits, lest the pool deadlock on its own queue.
func (m *Manager) dispatch(b []ending, wait bool) {
	if len(b) == 0 {
		m.st.release(b)
		return
	}
	if !m.q.push(b, wait) {
		// The pool has been shut down (a callback ended a session during
		// Close): run the batch here rather than lose it.
		m.run(&job{b: b})
		m.q.done(len(b))
	}
}

// A job is a batch of endings being run by a worker, and how far it got.
type job struct {
	b  []ending
	i  int       // the ending whose callbacks run now
	j  int       // its next callback: notify[j], or Config.OnExpire at len(notify)
	t0 time.Time // when the callbacks of ending i began; zero: not yet
}

// work runs batches from the queue, starting with jb's if it has one. A
// callback that calls runtime.Goexit (t.FailNow does) ends the goroutine it
// runs on, which recover cannot stop: the deferred function then counts it
// as a failed callback and carries the batch on in a new worker, from the
// callback after it.
func (m *Manager) work(jb *job) {
	exited := true
	defer func() {
		if exited {
			m.panics.Add(1)
			go m.work(jb)
			return
		}
		m.workers.Done()
	}()
	for {
		if jb.b == nil {
			b, ok := m.q.pop()
			if !ok {
				exited = false
				return
			}
			*jb = job{b: b}
		}
		m.run(jb)
		m.q.done(len(jb.b))
		*jb = job{}
	}
}

// run calls the job's callbacks from where it stands, then has the store
// free the sessions.
func (m *Manager) run(jb *job) {
	b := jb.b
	for ; jb.i < len(b); jb.i, jb.j = jb.i+1, 0 {
		e := &b[jb.i]
		s := m.handle(e.id, e.r)
		if jb.t0.IsZero() {
			jb.t0 = time.Now()
		}
		for jb.j <= len(e.notify) {
			k := jb.j
			jb.j++ // first, so that a Goexit resumes after this callback
			if k < len(e.notify) {
				m.call(e.notify[k], s, e.reason)
			} else if m.cfg.OnExpire != nil {
				m.call(m.cfg.OnExpire, s, e.reason)
			}
		}
		// One clock read per ending, not two: the time that ends this
		// ending's callbacks starts the next one's. At millions of
		// endings a second, every read counts.
		now := time.Now()
		m.callbackTime.observe(now.Sub(jb.t0))
		jb.t0 = now
	}
	m.st.release(b)
}

// call runs one callback, recovering and counting a panic so that the
// session's other callbacks still run.
func (m *Manager) call(f func(Session, Reason), s Session, r Reason) {
	defer func() {
		if recover() != nil {
			m.panics.Add(1)
		}
	}()
	f(s, r)
}

// queue is the workers' backlog of batches.
type queue struct {
	mu       sync.Mutex
	ready    sync.Cond // a batch was pushed, or the queue closed
	progress sync.Cond // endings finished, or the queue closed
	batches  [][]ending
	head     int
	limit    int
	pushed   uint64 // endings ever pushed; pushed - finished is the backlog
	finished uint64 // endings ever finished
	nowait   bool   // Close has begun: pushes no longer wait for room
	closed   bool
}

func (q *queue) init(limit int) {
	q.limit = limit
	q.ready.L = &q.mu
	q.progress.L = &q.mu
}

// push appends a batch, first waiting for room if wait is set; it reports
// false if the queue is closed.
func (q *queue) push(b []ending, wait bool) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for wait && q.pushed-q.finished >= uint64(q.limit) && !q.nowait && !q.closed {
		q.progress.Wait()
	}
	if q.closed {
		return false
	}
	q.batches = append(q.batches, b)
	q.pushed += uint64(len(b))
	q.ready.Signal()
	return true
}

// pop takes the oldest batch, waiting for one; ok is false once the queue
// is closed and empty.
func (q *queue) pop() (b []ending, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.head == len(q.batches) {
		if q.closed {
			return nil, false
		}
		q.ready.Wait()
	}
	b = q.batches[q.head]
	q.batches[q.head] = nil
	if q.head++; q.head == len(q.batches) {
		q.batches, q.head = q.batches[:0], 0
	}
	return b, true
}

func (q *queue) done(n int) {
	q.mu.Lock()
	q.finished += uint64(n)
	q.progress.Broadcast()
	q.mu.Unlock()
}

// waitFinished waits until every ending pushed has finished, including
// those that callbacks push while it waits (a callback that calls Expire).
func (q *queue) waitFinished() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.finished < q.pushed && !q.closed {
		q.progress.Wait()
	}
}

func (q *queue) backlog() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return int(q.pushed - q.finished)
}

// stopWaiting lets every push go on without waiting for room, so that a
// driver blocked on a full queue does not hold Close up.
func (q *queue) stopWaiting() {
	q.mu.Lock()
	q.nowait = true
	q.progress.Broadcast()
	q.mu.Unlock()
}

func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.ready.Broadcast()
	q.progress.Broadcast()
	q.mu.Unlock()
}
