package sessions_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionwheel/sessionwheel/sessions"
	"github.com/sessionwheel/sessionwheel/sessions/sessionstest"
)

// restored starts a manager on clk (manual: only Sweep ends sessions) from
// the snapshot in r, recording endings in the returned log. cfg gets the
// test defaults of newManager.
func restored(t testing.TB, cfg sessions.Config, clk *sessionstest.Clock, r io.Reader) (*sessions.Manager, *endLog, error) {
	t.Helper()
	log := &endLog{clk: clk, ends: map[sessions.ID][]endEvent{}}
	if cfg.Tick == 0 {
		cfg.Tick = tick
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 10 * time.Second
	}
	cfg.Clock = clk
	cfg.OnExpire = log.record
	cfg.Restore = r
	m, err := sessions.NewForTest(cfg, nil, true)
	if err != nil {
		return nil, log, err
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m, log, nil
}

func snapshot(t testing.TB, m *sessions.Manager) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := m.Snapshot(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// saved is what a session looked like when the snapshot was taken.
type saved struct {
	created, access, deadline time.Time
	idle                      time.Duration
}

func savedOf(s sessions.Session) saved {
	return saved{s.CreatedAt(), s.LastAccess(), s.Deadline(), s.IdleTimeout()}
}

// A session comes back with its ID, creation, last access, own timeout,
// values and deadline in wall-clock terms: restored 90 s after the
// snapshot, it has 90 s less left. One whose idle or absolute end passed
// while no process held it ends at restore for that reason, and OnExpire
// sees it.
func TestSnapshotRoundTrip(t *testing.T) {
	cfg := sessions.Config{IdleTimeout: 10 * time.Minute, AbsoluteTimeout: time.Hour}
	m, clk, _ := newTestManager(t, cfg, nil, true)
	t0 := clk.Now()

	c := mustCreate(t, m) // will reach its absolute end at t0+60m
	if err := c.SetIdleTimeout(2 * time.Hour); err != nil {
		t.Fatal(err)
	}
	step(m, clk, 50*time.Minute)
	b := mustCreate(t, m)
	if err := b.SetIdleTimeout(30 * time.Minute); err != nil {
		t.Fatal(err)
	}
	step(m, clk, 5*time.Minute)
	a := mustCreate(t, m)
	for k, v := range map[string]any{"user": "ann", "n": 42, "raw": []byte{1, 2, 3}, "nil": nil} {
		if err := a.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	d := mustCreate(t, m)
	if err := d.SetIdleTimeout(4 * time.Minute); err != nil {
		t.Fatal(err)
	}
	step(m, clk, 2*time.Minute)
	if !m.Touch(c.ID()) {
		t.Fatal("c ended early")
	}
	step(m, clk, time.Minute) // t0+58m
	taken := clk.Now()
	ended := mustCreate(t, m)
	if err := ended.Expire(); err != nil {
		t.Fatal(err)
	}
	want := map[sessions.ID]saved{}
	for _, s := range []sessions.Session{a, b, c, d} {
		want[s.ID()] = savedOf(s)
	}
	if got := want[c.ID()].deadline; !got.Equal(t0.Add(time.Hour)) {
		t.Fatalf("c's deadline %v, want the absolute end", got)
	}
	snap := snapshot(t, m)

	for _, tc := range []struct {
		after    time.Duration
		alive    []sessions.Session
		endedWhy map[sessions.Session]sessions.Reason
	}{
		{after: 90 * time.Second, alive: []sessions.Session{a, b, c},
			endedWhy: map[sessions.Session]sessions.Reason{d: sessions.Idle}},
		{after: 3 * time.Minute, alive: []sessions.Session{a, b},
			endedWhy: map[sessions.Session]sessions.Reason{c: sessions.Absolute, d: sessions.Idle}},
	} {
		clk2 := sessionstest.NewClock(taken.Add(tc.after))
		m2, log2, err := restored(t, cfg, clk2, bytes.NewReader(snap))
		if err != nil {
			t.Fatal(err)
		}
		m2.Sweep() // waits for the callbacks of the endings at restore
		if m2.Len() != len(tc.alive) {
			t.Errorf("restored %v later: Len %d, want %d", tc.after, m2.Len(), len(tc.alive))
		}
		for _, s := range tc.alive {
			s2, ok := m2.Peek(s.ID())
			if !ok {
				t.Fatalf("restored %v later: session lost", tc.after)
			}
			w := want[s.ID()]
			got := savedOf(s2)
			if !got.created.Equal(w.created) || !got.access.Equal(w.access) || !got.deadline.Equal(w.deadline) || got.idle != w.idle {
				t.Errorf("restored %v later: %+v, want %+v", tc.after, got, w)
			}
			if left, wantLeft := s2.Deadline().Sub(clk2.Now()), w.deadline.Sub(taken)-tc.after; left != wantLeft {
				t.Errorf("restored %v later: %v left, want %v", tc.after, left, wantLeft)
			}
			if len(log2.get(s.ID())) != 0 {
				t.Errorf("restored %v later: a live session's OnExpire ran", tc.after)
			}
		}
		for s, why := range tc.endedWhy {
			if _, ok := m2.Peek(s.ID()); ok {
				t.Errorf("restored %v later: overdue session found", tc.after)
			}
			if ev := log2.get(s.ID()); len(ev) != 1 || ev[0].reason != why {
				t.Errorf("restored %v later: overdue session's endings %v, want one %v", tc.after, ev, why)
			}
		}
		if _, ok := m2.Peek(ended.ID()); ok {
			t.Error("a session that ended before the snapshot came back")
		}
		st := m2.Stats()
		if st.Restored != 4 || st.Ended[sessions.Idle]+st.Ended[sessions.Absolute] != uint64(len(tc.endedWhy)) {
			t.Errorf("restored %v later: stats %+v", tc.after, st)
		}

		// Values and the own timeout are back; the restored sessions go on
		// as any other: a touch moves the deadline, and they end on time.
		s2, _ := m2.Get(a.ID())
		for k, v := range map[string]any{"user": "ann", "n": 42, "nil": nil} {
			if got, err := s2.Get(k); err != nil || got != v {
				t.Errorf("value %q = %v (%v), want %v", k, got, err, v)
			}
		}
		if raw, _ := s2.Get("raw"); !bytes.Equal(raw.([]byte), []byte{1, 2, 3}) {
			t.Errorf("raw = %v", raw)
		}
		bs, _ := m2.Peek(b.ID())
		if bs.IdleTimeout() != 30*time.Minute {
			t.Errorf("own idle timeout %v after restore", bs.IdleTimeout())
		}
		end := bs.Deadline()
		clk2.Set(end.Add(-time.Nanosecond))
		m2.Sweep()
		if !bs.Alive() {
			t.Errorf("restored %v later: b ended before its deadline", tc.after)
		}
		clk2.Set(end)
		m2.Sweep()
		if ev := log2.get(b.ID()); len(ev) != 1 || ev[0].reason != sessions.Idle || !ev[0].at.Equal(end) {
			t.Errorf("restored %v later: b's endings %v, want Idle at %v", tc.after, ev, end)
		}
	}
}

// A snapshot taken by a manager whose epoch and tick differ from the
// restoring one's never brings a session's end earlier, and moves it later
// by less than two of the restoring manager's ticks (one for the end of the
// last touch's tick, one for an own timeout rounded up to whole ticks): for
// a session with its own idle timeout, and for one with the manager's if
// both managers round it to the same duration (63 s is a whole number of
// each tick here).
func TestSnapshotNeverEarlierAcrossTicks(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := sessionstest.NewClock(start.Add(123456789 * time.Nanosecond))
	m, err := sessions.NewForTest(sessions.Config{Tick: 70 * time.Millisecond, IdleTimeout: 63 * time.Second, Clock: clk}, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	want := map[sessions.ID]time.Time{}
	for i := range 50 {
		clk.Advance(time.Duration(i) * 13 * time.Millisecond)
		s := mustCreate(t, m)
		if i%2 == 0 {
			s.SetIdleTimeout(61 * time.Second) // 871.4 ticks of 70 ms: 61.04 s
		}
		want[s.ID()] = s.Deadline()
	}
	snap := snapshot(t, m)
	for _, tk := range []time.Duration{time.Millisecond, 30 * time.Millisecond, time.Second} {
		clk2 := sessionstest.NewClock(clk.Now().Add(987654321 * time.Nanosecond))
		m2, _, err := restored(t, sessions.Config{Tick: tk, IdleTimeout: 63 * time.Second}, clk2, bytes.NewReader(snap))
		if err != nil {
			t.Fatal(err)
		}
		for id, w := range want {
			s, ok := m2.Peek(id)
			if !ok {
				t.Fatalf("tick %v: session lost", tk)
			}
			if got := s.Deadline(); got.Before(w) || !got.Before(w.Add(2*tk)) {
				t.Errorf("tick %v: deadline %v, saved %v", tk, got, w)
			}
		}
	}
}

type unregistered struct{ A int }

// A value the codec cannot encode fails the snapshot, naming the key and
// the type; nothing is silently dropped.
func TestSnapshotValueErrors(t *testing.T) {
	for _, tc := range []struct {
		v        any
		typeName string
	}{
		{func() {}, "func()"},
		{unregistered{1}, "sessions_test.unregistered"},
		{make(chan int), "chan int"},
	} {
		m, _, _ := newTestManager(t, sessions.Config{}, nil, true)
		mustCreate(t, m)
		s := mustCreate(t, m)
		if err := s.Set("cart", tc.v); err != nil {
			t.Fatal(err)
		}
		err := m.Snapshot(io.Discard)
		if !errors.Is(err, sessions.ErrSnapshotValue) || !strings.Contains(err.Error(), `"cart"`) || !strings.Contains(err.Error(), tc.typeName) {
			t.Errorf("%T: Snapshot: %v, want ErrSnapshotValue naming the key and %s", tc.v, err, tc.typeName)
		}
		if strings.Contains(err.Error(), s.ID().String()) {
			t.Error("the error names the session's ID, a credential")
		}
	}
	// Registered, the type goes through.
	gob.Register(registered{})
	m, clk, _ := newTestManager(t, sessions.Config{}, nil, true)
	s := mustCreate(t, m)
	s.Set("cart", registered{Items: []string{"tea"}})
	m2, _, err := restored(t, sessions.Config{}, clk, bytes.NewReader(snapshot(t, m)))
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := m2.Peek(s.ID())
	if v, err := s2.Get("cart"); err != nil || v.(registered).Items[0] != "tea" {
		t.Errorf("registered value: %v, %v", v, err)
	}
}

type registered struct{ Items []string }

// goodSnapshot returns a snapshot of a few sessions, two with values.
func goodSnapshot(t testing.TB) ([]byte, *sessionstest.Clock) {
	t.Helper()
	m, clk, _ := newTestManager(t, sessions.Config{IdleTimeout: time.Hour}, nil, true)
	for i := range 5 {
		s := mustCreate(t, m)
		if i%2 == 0 {
			s.Set("k", strings.Repeat("v", i*10))
		}
	}
	return snapshot(t, m), clk
}

// Bad input is refused with an error that says what is wrong and where,
// and New starts nothing (goleak checks that no goroutine is left).
func TestRestoreRefusesBadInput(t *testing.T) {
	snap, clk := goodSnapshot(t)
	restore := func(b []byte, cfg sessions.Config) error {
		_, _, err := restored(t, cfg, clk, bytes.NewReader(b))
		return err
	}
	if err := restore(snap, sessions.Config{}); err != nil {
		t.Fatal(err)
	}
	fixHeader := func(b []byte) []byte {
		binary.LittleEndian.PutUint32(b[32:], crc32.Checksum(b[:32], crc32.MakeTable(crc32.Castagnoli)))
		return b
	}
	for _, tc := range []struct {
		name  string
		in    []byte
		want  error
		where string
	}{
		{"empty", nil, sessions.ErrNotSnapshot, ""},
		{"foreign", []byte("{\"sessions\": []}\n"), sessions.ErrNotSnapshot, "first 8 bytes"},
		{"version 3", fixHeader(patch(snap, 8, 2)), sessions.ErrSnapshotVersion, "version 3"},
		{"flags", fixHeader(patch(snap, 12, 1)), sessions.ErrSnapshotVersion, "flags"},
		{"header checksum", patch(snap, 20, 0x55), sessions.ErrSnapshotCorrupt, "header checksum"},
		{"block checksum", patch(snap, 36+12+3, 0x55), sessions.ErrSnapshotCorrupt, "block 1 at byte 36: checksum"},
		{"cut in a block", snap[:len(snap)-30], sessions.ErrSnapshotCorrupt, "truncated"},
		{"no trailer", snap[:len(snap)-20], sessions.ErrSnapshotCorrupt, "truncated: header of block 2"},
		{"trailing data", append(bytes.Clone(snap), 0), sessions.ErrSnapshotCorrupt, "after the trailer"},
		{"twice the blocks", twice(snap), sessions.ErrSnapshotCorrupt, "session 0 (byte 0 of the block): a session seen before"},
	} {
		err := restore(tc.in, sessions.Config{})
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.where) {
			t.Errorf("%s: %v, want %v saying %q", tc.name, err, tc.want, tc.where)
		}
	}
	// Every cut is refused; a cut after the magic is a truncation.
	for n := range len(snap) {
		err := restore(snap[:n], sessions.Config{})
		if n >= 8 && (!errors.Is(err, sessions.ErrSnapshotCorrupt) || !errors.Is(err, io.ErrUnexpectedEOF)) {
			t.Fatalf("cut at %d: %v", n, err)
		}
		if n < 8 && !errors.Is(err, sessions.ErrNotSnapshot) {
			t.Fatalf("cut at %d: %v", n, err)
		}
	}
	// Every flipped bit is refused.
	for i := range len(snap) * 8 {
		b := bytes.Clone(snap)
		b[i/8] ^= 1 << (i % 8)
		if err := restore(b, sessions.Config{}); err == nil {
			t.Fatalf("bit %d flipped: restored", i)
		}
	}
	// More sessions than MaxSessions: refused, not half loaded.
	if err := restore(snap, sessions.Config{MaxSessions: 4}); !errors.Is(err, sessions.ErrTooManySessions) {
		t.Errorf("MaxSessions 4: %v", err)
	}
	if err := restore(snap, sessions.Config{MaxSessions: 5}); err != nil {
		t.Errorf("MaxSessions 5: %v", err)
	}
	// A read error is reported as such.
	boom := errors.New("disk on fire")
	_, _, err := restored(t, sessions.Config{}, clk, io.MultiReader(bytes.NewReader(snap[:50]), iotestErr{boom}))
	if !errors.Is(err, boom) {
		t.Errorf("read error: %v", err)
	}
}

type iotestErr struct{ err error }

func (r iotestErr) Read([]byte) (int, error) { return 0, r.err }

func patch(b []byte, at int, v byte) []byte {
	b = bytes.Clone(b)
	b[at] ^= v
	return b
}

// twice returns the snapshot with its blocks (not the header nor the
// trailer) repeated: every CRC holds, but each session comes twice.
func twice(snap []byte) []byte {
	blocks := snap[36 : len(snap)-20]
	out := append(bytes.Clone(snap[:len(snap)-20]), blocks...)
	return append(out, snap[len(snap)-20:]...)
}

// A snapshot taken while two goroutines create, touch, expire and sweep at
// full speed is a consistent cut: no session that had ended before it
// began is in it, and every session alive from before it began until after
// it returned is.
func TestSnapshotWhileServing(t *testing.T) {
	m, clk, log := newTestManager(t, sessions.Config{Shards: 4, IdleTimeout: 20 * time.Second}, nil, true)
	var (
		mu  sync.Mutex
		ids []sessions.ID
	)
	for range 2000 {
		ids = append(ids, mustCreate(t, m).ID())
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ops atomic.Int64
	wg.Add(2)
	go func() { // creates and expires
		defer wg.Done()
		r := rand.New(rand.NewPCG(1, 2))
		for {
			select {
			case <-stop:
				return
			default:
			}
			s, err := m.Create()
			if err == nil {
				s.Set("n", r.IntN(100))
				mu.Lock()
				ids = append(ids, s.ID())
				victim := ids[r.IntN(len(ids))]
				mu.Unlock()
				m.Expire(victim)
			}
			ops.Add(1)
		}
	}()
	go func() { // touches and moves time, ending the untouched
		defer wg.Done()
		r := rand.New(rand.NewPCG(3, 4))
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			id := ids[r.IntN(len(ids))]
			mu.Unlock()
			m.Touch(id)
			if i%500 == 0 {
				step(m, clk, time.Second)
			}
			ops.Add(1)
		}
	}()
	for round := range 3 {
		for want := int64(round+1) * 10000; ops.Load() < want; {
			runtime.Gosched() // let the workload go on: no timing is asserted
		}
		// What had ended before the snapshot began, and what existed.
		endedBefore := map[sessions.ID]bool{}
		log.mu.Lock()
		for id := range log.ends {
			endedBefore[id] = true
		}
		log.mu.Unlock()
		mu.Lock()
		before := append([]sessions.ID(nil), ids...)
		mu.Unlock()
		began := clk.Now()
		snap := snapshot(t, m)
		// Alive now, after the snapshot returned: alive all through it.
		var throughout []sessions.ID
		for _, id := range before {
			if _, ok := m.Peek(id); ok {
				throughout = append(throughout, id)
			}
		}

		// Restored at the time the snapshot began, every session saved is
		// alive: each was alive when it was copied, at that time or later.
		m2, _, err := restored(t, sessions.Config{IdleTimeout: 20 * time.Second}, sessionstest.NewClock(began), bytes.NewReader(snap))
		if err != nil {
			t.Fatal(err)
		}
		for id := range endedBefore {
			if _, ok := m2.Peek(id); ok {
				t.Fatalf("round %d: session ended before the snapshot began, and was saved", round)
			}
		}
		for _, id := range throughout {
			if _, ok := m2.Peek(id); !ok {
				t.Fatalf("round %d: session alive throughout the snapshot was not saved", round)
			}
		}
		t.Logf("round %d: %d ops, %d sessions in the snapshot, %d alive throughout, %d ended before", round, ops.Load(), m2.Len(), len(throughout), len(endedBefore))
	}
	close(stop)
	wg.Wait()
}

type failingWriter struct {
	left int // bytes accepted before the error
	err  error
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		n := w.left
		w.left = 0
		return n, w.err
	}
	w.left -= len(p)
	return len(p), nil
}

// Snapshot reports its writer's error, wherever it comes, and refuses to
// run on a closed manager, whose sessions are gone.
func TestSnapshotErrors(t *testing.T) {
	m, _, _ := newTestManager(t, sessions.Config{}, nil, true)
	for range 3000 {
		mustCreate(t, m)
	}
	full := len(snapshot(t, m))
	boom := errors.New("disk full")
	for _, at := range []int{0, 10, 36, 5000, full - 1} {
		if err := m.Snapshot(&failingWriter{left: at, err: boom}); !errors.Is(err, boom) {
			t.Errorf("writer failing after %d bytes: %v", at, err)
		}
	}
	m.Close(context.Background())
	if err := m.Snapshot(io.Discard); !errors.Is(err, sessions.ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
}

// jsonCodec keeps every value as a JSON string: a Codec of the caller's.
type jsonCodec struct{ marshalled *atomic.Int64 }

func (c jsonCodec) Marshal(v any) ([]byte, error) {
	c.marshalled.Add(1)
	return json.Marshal(v)
}

func (jsonCodec) Unmarshal(data []byte) (any, error) {
	var v any
	err := json.Unmarshal(data, &v)
	return v, err
}

// Config.Codec encodes the values of a snapshot and decodes them at
// restore, in place of gob.
func TestSnapshotCodec(t *testing.T) {
	var n atomic.Int64
	codec := jsonCodec{&n}
	m, clk, _ := newTestManager(t, sessions.Config{Codec: codec}, nil, true)
	s := mustCreate(t, m)
	s.Set("user", "ann")
	s.Set("roles", []string{"admin"})
	snap := snapshot(t, m)
	if n.Load() != 2 {
		t.Errorf("the codec encoded %d values, want 2", n.Load())
	}
	m2, _, err := restored(t, sessions.Config{Codec: codec}, clk, bytes.NewReader(snap))
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := m2.Peek(s.ID())
	if v, _ := s2.Get("roles"); fmt.Sprint(v) != "[admin]" {
		t.Errorf("roles = %#v", v)
	}
	// Read with another codec, the values are not understood: an error
	// that says which value, not a silent drop.
	_, _, err = restored(t, sessions.Config{}, clk, bytes.NewReader(snap))
	if !errors.Is(err, sessions.ErrSnapshotValue) || !strings.Contains(err.Error(), `"user"`) && !strings.Contains(err.Error(), `"roles"`) {
		t.Errorf("restored with gob: %v, want ErrSnapshotValue naming the key", err)
	}
}

// Owners survive a snapshot: the restored index lists the same sessions
// under the same owners, and ExpireOwner ends them.
func TestSnapshotKeepsOwners(t *testing.T) {
	m, clk, _ := newManager(t, sessions.Config{})
	alice := []sessions.Session{mustCreate(t, m), mustCreate(t, m)}
	bob, nobody := mustCreate(t, m), mustCreate(t, m)
	for _, s := range alice {
		if err := s.SetOwner("alice"); err != nil {
			t.Fatal(err)
		}
	}
	if err := bob.SetOwner("bob\x00with any bytes"); err != nil {
		t.Fatal(err)
	}
	data := snapshot(t, m)

	r, _, err := restored(t, sessions.Config{}, sessionstest.NewClock(clk.Now()), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	got := map[sessions.ID]bool{}
	for _, o := range r.Owned("alice") {
		got[o.Session.ID()] = true
	}
	if len(got) != 2 || !got[alice[0].ID()] || !got[alice[1].ID()] {
		t.Fatalf("restored alice owns %v", got)
	}
	if b := r.Owned("bob\x00with any bytes"); len(b) != 1 || b[0].Session.ID() != bob.ID() {
		t.Fatalf("restored bob owns %v", b)
	}
	if s, ok := r.Peek(nobody.ID()); !ok || s.Owner() != "" {
		t.Fatalf("the session without an owner came back as %v, %v (owner %q)", s, ok, s.Owner())
	}
	if st := r.Stats(); st.Owners != 2 || st.OwnedSessions != 3 {
		t.Fatalf("restored index: %d owners, %d owned sessions", st.Owners, st.OwnedSessions)
	}
	if n := r.ExpireOwner("alice"); n != 2 {
		t.Fatalf("ExpireOwner after restore ended %d, want 2", n)
	}
}
