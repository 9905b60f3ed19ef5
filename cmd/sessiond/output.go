package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"sync"
	"time"

	"github.com/sessionwheel/sessionwheel/sessions"
)

// flushInterval is how long an expiry line may wait in the buffer before it
// reaches standard output.
const flushInterval = 100 * time.Millisecond

// A lineWriter writes the expiry lines, from any goroutine, through a
// buffer. One write(2) per line under a lock capped the shutdown at a few
// hundred thousand lines in ten seconds; buffered, a line costs a copy, and
// the buffer goes out when it is full, every flushInterval (see
// flushEvery), and at exit.
type lineWriter struct {
	mu  sync.Mutex
	w   *bufio.Writer
	err error // the first write error; later lines are dropped
}

func newLineWriter(w io.Writer) *lineWriter {
	return &lineWriter{w: bufio.NewWriterSize(w, 64<<10)}
}

// expired writes the example's line for the session with the given ID,
// without allocating.
func (l *lineWriter) expired(id sessions.ID) {
	var b [64]byte
	line := append(b[:0], "Session "...)
	line, _ = id.AppendText(line)
	line = append(line, " has expired.\n"...)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		_, l.err = l.w.Write(line)
	}
}

// flush writes out what is buffered and returns the first write error.
func (l *lineWriter) flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = l.w.Flush()
	}
	return l.err
}

// flushEvery flushes the writer every interval until stop is closed, then
// returns (without a last flush: the caller flushes once the last line is
// written).
func (l *lineWriter) flushEvery(interval time.Duration, stop <-chan struct{}) {
	every(interval, stop, func() { l.flush() })
}

// every calls f every interval until stop is closed.
func every(interval time.Duration, stop <-chan struct{}, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			f()
		}
	}
}

// sessionTag names a session in logs: the first 6 bytes of the SHA-256 of
// its ID, in hex. The ID itself is a bearer credential (whoever has it is
// the visitor), so it never goes to the logs; the tag tells sessions apart
// (48 bits: a collision among a million sessions is unlikely) and reveals
// nothing of the ID.
func sessionTag(id sessions.ID) string {
	sum := sha256.Sum256(id[:])
	return hex.EncodeToString(sum[:6])
}

// A throttle lets an event through at most once per interval and counts
// the events it held back, so that a flood of refusals makes one log line
// per interval rather than one each.
type throttle struct {
	every time.Duration

	mu   sync.Mutex
	next time.Time // the first time an event may pass again
	held int       // events held back since the last one that passed
}

// allow reports whether the event at now may pass, and if so how many were
// held back before it.
func (t *throttle) allow(now time.Time) (held int, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Before(t.next) {
		t.held++
		return 0, false
	}
	held, t.held = t.held, 0
	t.next = now.Add(t.every)
	return held, true
}
