package sessions_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/sessionwheel/sessionwheel/sessions"
	"github.com/sessionwheel/sessionwheel/sessions/sessionstest"
)

// FuzzRestore feeds New arbitrary bytes as a snapshot. Whatever they are,
// New neither panics nor hangs nor allocates without bound, and fails only
// with the package's errors; what it accepts, it writes back as a snapshot
// that restores to as many sessions. Each input is tried as it is and with
// its checksums made right, so that mutations reach the parser. The seed corpus (testdata/fuzz) holds
// snapshots with and without values, and damaged ones.
func FuzzRestore(f *testing.F) {
	snap, _ := goodSnapshot(f)
	f.Add(snap)
	f.Add(snap[:len(snap)/2])
	f.Add(twice(snap))
	f.Fuzz(func(t *testing.T, data []byte) {
		restoreFuzzed(t, data)
		restoreFuzzed(t, sessions.FixChecksums(data))
	})
}

func restoreFuzzed(t *testing.T, data []byte) {
	cfg := sessions.Config{
		Clock:       sessionstest.NewClock(time.Date(2026, 1, 1, 0, 0, 30, 0, time.UTC)),
		IdleTimeout: time.Hour, MaxSessions: 1000, Workers: 1, Shards: 4,
		Restore: bytes.NewReader(data),
	}
	m, err := sessions.NewForTest(cfg, nil, true)
	if err != nil {
		for _, want := range []error{sessions.ErrNotSnapshot, sessions.ErrSnapshotVersion, sessions.ErrSnapshotCorrupt,
			sessions.ErrSnapshotValue, sessions.ErrTooManySessions, sessions.ErrInvalidConfig} {
			if errors.Is(err, want) {
				return
			}
		}
		t.Fatalf("New: an error of no kind the package names: %v", err)
	}
	defer m.Close(t.Context())
	var b bytes.Buffer
	if err := m.Snapshot(&b); err != nil {
		if errors.Is(err, sessions.ErrSnapshotValue) {
			return // gob decodes some values it cannot encode back (nil pointers in a map...)
		}
		t.Fatal(err)
	}
	cfg.Restore = &b
	m2, err := sessions.NewForTest(cfg, nil, true)
	if err != nil {
		t.Fatalf("a snapshot of a restored manager: %v", err)
	}
	defer m2.Close(t.Context())
	if m2.Len() != m.Len() {
		t.Fatalf("%d sessions restored, then %d", m.Len(), m2.Len())
	}
}
