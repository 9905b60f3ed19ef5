package sessions_test

import (
	"context"
	"flag"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sessionwheel/sessionwheel/sessions"
	"github.com/sessionwheel/sessionwheel/sessions/sessionstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// long makes the randomised tests run longer: make test-long sets it, with
// many more rapid checks.
var long = flag.Bool("long", false, "run the randomised tests longer (make test-long)")

const tick = time.Second

// endLog records every ending a manager reports through OnExpire, with the
// fake time at which the callback ran.
type endLog struct {
	mu   sync.Mutex
	clk  *sessionstest.Clock
	ends map[sessions.ID][]endEvent
}

type endEvent struct {
	reason sessions.Reason
	at     time.Time
}

func (l *endLog) record(s sessions.Session, r sessions.Reason) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ends[s.ID()] = append(l.ends[s.ID()], endEvent{r, l.clk.Now()})
}

func (l *endLog) get(id sessions.ID) []endEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]endEvent(nil), l.ends[id]...)
}

func (l *endLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.ends {
		n += len(e)
	}
	return n
}

// newManager returns a manager on a fake clock with a one-second tick and a
// ten-second idle timeout unless cfg says otherwise, recording endings in
// the returned log, and closes it when the test ends.
func newManager(t testing.TB, cfg sessions.Config) (*sessions.Manager, *sessionstest.Clock, *endLog) {
	t.Helper()
	return newTestManager(t, cfg, nil, false)
}

// newTestManager is newManager with the IDs from next (crypto/rand if nil)
// and, if manual, no timer: only Sweep ends sessions (NewForTest).
func newTestManager(t testing.TB, cfg sessions.Config, next func() sessions.ID, manual bool) (*sessions.Manager, *sessionstest.Clock, *endLog) {
	t.Helper()
	clk := sessionstest.NewClock(time.Time{})
	log := &endLog{clk: clk, ends: map[sessions.ID][]endEvent{}}
	if cfg.Tick == 0 {
		cfg.Tick = tick
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 10 * time.Second
	}
	cfg.Clock = clk
	if cfg.OnExpire == nil {
		cfg.OnExpire = log.record
	}
	m, err := sessions.NewForTest(cfg, next, manual)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m, clk, log
}

// step moves the clock by d and settles the endings due.
func step(m *sessions.Manager, clk *sessionstest.Clock, d time.Duration) {
	clk.Advance(d)
	m.Sweep()
}

func mustCreate(t testing.TB, m *sessions.Manager) sessions.Session {
	t.Helper()
	s, err := m.Create()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
