package metrics_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/sessionwheel/sessionwheel/metrics"
	"github.com/sessionwheel/sessionwheel/sessions"
	"github.com/sessionwheel/sessionwheel/sessions/sessionstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newManager returns a manager that the test closes when it ends.
func newManager(t testing.TB, cfg sessions.Config) *sessions.Manager {
	t.Helper()
	m, err := sessions.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil && !errors.Is(err, sessions.ErrClosed) {
			t.Error(err)
		}
	})
	return m
}

func create(t testing.TB, m *sessions.Manager, n int) []sessions.Session {
	t.Helper()
	s := make([]sessions.Session, n)
	for i := range s {
		var err error
		if s[i], err = m.Create(); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// gather registers c on a fresh pedantic registry (which also checks that
// what Collect sends matches what Describe announced) and gathers it.
func gather(t *testing.T, c prometheus.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func TestLint(t *testing.T) {
	clk := sessionstest.NewClock(time.Time{})
	m := newManager(t, sessions.Config{IdleTimeout: 10 * time.Second, Tick: time.Second, Clock: clk})
	c := metrics.New(m, prometheus.Labels{"manager": "web"})
	lint := func(when string) {
		problems, err := testutil.CollectAndLint(c)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s: %s", when, p.Metric, p.Text)
		}
	}
	lint("fresh manager")

	ss := create(t, m, 3)
	if err := ss[0].NotifyOnExpire(func(sessions.Session, sessions.Reason) {}); err != nil {
		t.Fatal(err)
	}
	ss[1].Expire()
	clk.Advance(time.Minute)
	m.Sweep()
	lint("after endings")
}

// Help texts, as the expected exposition repeats them.
const (
	helpCreated   = "Sessions created (a renewal creates none)."
	helpEnded     = "Sessions ended, by reason: idle (idle timeout), absolute (absolute timeout), explicit (Expire, a logout), shutdown (manager closed), evicted (manager full)."
	helpActive    = "Live sessions, including any past their deadline that the driver has not yet ended."
	helpFailures  = "Session creations refused, by cause: full (MaxSessions reached, no eviction), closed (manager closed)."
	helpLateness  = "Time from a session's deadline (rounded up to a whole tick) to its ending, for idle and absolute endings."
	helpLifetime  = "Time from a session's creation to its ending, for every reason."
	helpDuration  = "Time the expiry callbacks of one ending took together, for endings that have callbacks."
	helpSweepHold = "Longest time the driver has held one shard's lock in one batch, since the manager started."
)

// TestScenario drives a manager with a fake clock and compares every metric
// whose value the scenario determines with the exact exposition expected.
//
// Left out of the comparison, and checked loosely below:
// sessionwheel_callback_duration_seconds and sessionwheel_sweep_hold_max_seconds
// are measured by the engine with the real clock (time.Now), not the
// manager's Clock, so their values depend on the machine's speed;
// sessionwheel_wheel_bucket_visits_total is a detail of the timing wheel's
// layout, not of this scenario.
func TestScenario(t *testing.T) {
	clk := sessionstest.NewClock(time.Time{})
	m := newManager(t, sessions.Config{IdleTimeout: 10 * time.Second, Tick: time.Second, Clock: clk})
	c := metrics.New(m, nil)

	// t=0: create N=10 sessions; they are due at the end of tick 0 plus
	// the 10 s idle timeout, at t=11s. s8 has a callback that panics.
	s := create(t, m, 10)
	if err := s[8].NotifyOnExpire(func(sessions.Session, sessions.Reason) { panic("callback bug") }); err != nil {
		t.Fatal(err)
	}

	// t=5s: touch s0..s3 (3 Gets and a Touch: 4 hits, 4 touches; now due
	// at t=16s), look at s4 without touching it (a hit, no touch), end s9
	// (explicit, lifetime 5 s), then look it up (a miss), and present a
	// malformed cookie (rejected).
	clk.Advance(5 * time.Second)
	for _, x := range s[:3] {
		if _, ok := m.Get(x.ID()); !ok {
			t.Fatal("Get missed a live session")
		}
	}
	if !m.Touch(s[3].ID()) {
		t.Fatal("Touch missed a live session")
	}
	if _, ok := m.Peek(s[4].ID()); !ok {
		t.Fatal("Peek missed a live session")
	}
	if !m.Expire(s[9].ID()) {
		t.Fatal("Expire missed a live session")
	}
	if _, ok := m.Get(s[9].ID()); ok {
		t.Fatal("Get found an ended session")
	}
	if _, ok := m.GetString("not-a-session-id"); ok {
		t.Fatal("GetString accepted a malformed ID")
	}

	// t=11.3s: M=5 untouched sessions s4..s8 end idle, 0.3 s past their
	// deadline, after living 11.3 s; the wheel entries of s0..s3 come due
	// and are re-filed (4 refiles). The clock runs on time to 10.99 s and
	// then skips, timers unrun, to 11.3 s, so that the driver cannot have
	// ended them at 11 s: the sweep happens at 11.3 s.
	clk.Advance(5*time.Second + 990*time.Millisecond)
	clk.Skip(310 * time.Millisecond)
	m.Sweep() // waits for s8's callback too

	// Then s0 is ended explicitly (K=2 with s9, lifetime 11.3 s), ending s4
	// again changes nothing, and s1 is renewed (a renewal and a touch, no
	// creation).
	if err := s[0].Expire(); err != nil {
		t.Fatal(err)
	}
	if m.Expire(s[4].ID()) {
		t.Fatal("Expire ended a session twice")
	}
	if _, err := m.Renew(s[1].ID()); err != nil {
		t.Fatal(err)
	}

	const want = `
# HELP sessionwheel_sessions_created_total ` + helpCreated + `
# TYPE sessionwheel_sessions_created_total counter
sessionwheel_sessions_created_total 10
# HELP sessionwheel_sessions_ended_total ` + helpEnded + `
# TYPE sessionwheel_sessions_ended_total counter
sessionwheel_sessions_ended_total{reason="absolute"} 0
sessionwheel_sessions_ended_total{reason="evicted"} 0
sessionwheel_sessions_ended_total{reason="explicit"} 2
sessionwheel_sessions_ended_total{reason="idle"} 5
sessionwheel_sessions_ended_total{reason="shutdown"} 0
# HELP sessionwheel_sessions_active ` + helpActive + `
# TYPE sessionwheel_sessions_active gauge
sessionwheel_sessions_active 3
# HELP sessionwheel_touches_total Touches of live sessions (each request presenting a live session's cookie makes one).
# TYPE sessionwheel_touches_total counter
sessionwheel_touches_total 5
# HELP sessionwheel_lookups_total Lookups of sessions by ID, by result: hit (live session), miss (unknown, ended or past its deadline), rejected (malformed ID text, never looked up).
# TYPE sessionwheel_lookups_total counter
sessionwheel_lookups_total{result="hit"} 5
sessionwheel_lookups_total{result="miss"} 1
sessionwheel_lookups_total{result="rejected"} 1
# HELP sessionwheel_create_failures_total ` + helpFailures + `
# TYPE sessionwheel_create_failures_total counter
sessionwheel_create_failures_total{cause="closed"} 0
sessionwheel_create_failures_total{cause="full"} 0
# HELP sessionwheel_renewals_total Sessions moved to a new ID by Renew (after a login).
# TYPE sessionwheel_renewals_total counter
sessionwheel_renewals_total 1
# HELP sessionwheel_wheel_refiles_total Timing wheel entries that came due for a session touched since it was filed, and were filed again at its new deadline: the whole cost of lazy touching.
# TYPE sessionwheel_wheel_refiles_total counter
sessionwheel_wheel_refiles_total 4
# HELP sessionwheel_callback_panics_total Expiry callbacks that panicked (recovered) or called runtime.Goexit; the session's other callbacks ran.
# TYPE sessionwheel_callback_panics_total counter
sessionwheel_callback_panics_total 1
# HELP sessionwheel_callback_queue_length Endings whose expiry callbacks have not finished; at the configured QueueLen the driver stops ending sessions until the workers catch up.
# TYPE sessionwheel_callback_queue_length gauge
sessionwheel_callback_queue_length 0
# HELP sessionwheel_expiry_lateness_seconds ` + helpLateness + `
# TYPE sessionwheel_expiry_lateness_seconds histogram
sessionwheel_expiry_lateness_seconds_bucket{le="0.001"} 0
sessionwheel_expiry_lateness_seconds_bucket{le="0.005"} 0
sessionwheel_expiry_lateness_seconds_bucket{le="0.01"} 0
sessionwheel_expiry_lateness_seconds_bucket{le="0.05"} 0
sessionwheel_expiry_lateness_seconds_bucket{le="0.1"} 0
sessionwheel_expiry_lateness_seconds_bucket{le="0.25"} 0
sessionwheel_expiry_lateness_seconds_bucket{le="0.5"} 5
sessionwheel_expiry_lateness_seconds_bucket{le="1"} 5
sessionwheel_expiry_lateness_seconds_bucket{le="2"} 5
sessionwheel_expiry_lateness_seconds_bucket{le="5"} 5
sessionwheel_expiry_lateness_seconds_bucket{le="10"} 5
sessionwheel_expiry_lateness_seconds_bucket{le="30"} 5
sessionwheel_expiry_lateness_seconds_bucket{le="60"} 5
sessionwheel_expiry_lateness_seconds_bucket{le="+Inf"} 5
sessionwheel_expiry_lateness_seconds_sum 1.5
sessionwheel_expiry_lateness_seconds_count 5
# HELP sessionwheel_session_lifetime_seconds ` + helpLifetime + `
# TYPE sessionwheel_session_lifetime_seconds histogram
sessionwheel_session_lifetime_seconds_bucket{le="1"} 0
sessionwheel_session_lifetime_seconds_bucket{le="10"} 1
sessionwheel_session_lifetime_seconds_bucket{le="30"} 7
sessionwheel_session_lifetime_seconds_bucket{le="60"} 7
sessionwheel_session_lifetime_seconds_bucket{le="300"} 7
sessionwheel_session_lifetime_seconds_bucket{le="900"} 7
sessionwheel_session_lifetime_seconds_bucket{le="1800"} 7
sessionwheel_session_lifetime_seconds_bucket{le="3600"} 7
sessionwheel_session_lifetime_seconds_bucket{le="7200"} 7
sessionwheel_session_lifetime_seconds_bucket{le="14400"} 7
sessionwheel_session_lifetime_seconds_bucket{le="28800"} 7
sessionwheel_session_lifetime_seconds_bucket{le="86400"} 7
sessionwheel_session_lifetime_seconds_bucket{le="+Inf"} 7
sessionwheel_session_lifetime_seconds_sum 72.8
sessionwheel_session_lifetime_seconds_count 7
`
	names := []string{
		"sessionwheel_sessions_created_total",
		"sessionwheel_sessions_ended_total",
		"sessionwheel_sessions_active",
		"sessionwheel_touches_total",
		"sessionwheel_lookups_total",
		"sessionwheel_create_failures_total",
		"sessionwheel_renewals_total",
		"sessionwheel_wheel_refiles_total",
		"sessionwheel_callback_panics_total",
		"sessionwheel_callback_queue_length",
		"sessionwheel_expiry_lateness_seconds",
		"sessionwheel_session_lifetime_seconds",
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}

	// The metrics left out above: present, of the right type, and with the
	// counts (not the durations) the scenario determines.
	got := gather(t, c)
	if n := len(got); n != 21 {
		t.Errorf("gathered %d metric families, want 21", n)
	}
	if c := got["sessionwheel_sessions_restored_total"].GetMetric()[0].GetCounter(); c == nil || c.GetValue() != 0 {
		t.Errorf("sessions_restored_total = %v, want a counter at 0 (nothing restored)", c)
	}
	if h := got["sessionwheel_callback_duration_seconds"].GetMetric()[0].GetHistogram(); h.GetSampleCount() != 1 {
		t.Errorf("callback_duration_seconds count = %d, want 1 (s8, the only session with a callback)", h.GetSampleCount())
	}
	if g := got["sessionwheel_table_offheap_bytes"].GetMetric()[0].GetGauge(); g == nil || g.GetValue() < 0 {
		t.Errorf("table_offheap_bytes = %v, want a gauge >= 0", g)
	}
	if g := got["sessionwheel_sweep_hold_max_seconds"].GetMetric()[0].GetGauge(); g == nil || g.GetValue() < 0 {
		t.Errorf("sweep_hold_max_seconds = %v, want a gauge >= 0", g)
	}
	if v := got["sessionwheel_wheel_bucket_visits_total"].GetMetric()[0].GetCounter().GetValue(); v < 1 {
		t.Errorf("wheel_bucket_visits_total = %v, want at least the one bucket swept", v)
	}
}

// TestOwners: owners tracked, owned sessions, and the endings MaxPerOwner
// caused, exactly.
func TestOwners(t *testing.T) {
	clk := sessionstest.NewClock(time.Time{})
	m := newManager(t, sessions.Config{Tick: time.Second, MaxPerOwner: 1, Clock: clk})
	c := metrics.New(m, nil)
	s := create(t, m, 4)
	for i, owner := range []string{"alice", "alice", "bob", ""} {
		// s1 takes alice's only place: s0 ends as evicted.
		if err := s[i].SetOwner(owner); err != nil {
			t.Fatal(err)
		}
	}
	m.Sweep()
	const want = `
# HELP sessionwheel_owners Owners (Session.SetOwner: users, after a login) with at least one live session.
# TYPE sessionwheel_owners gauge
sessionwheel_owners 2
# HELP sessionwheel_owned_sessions Live sessions that have an owner.
# TYPE sessionwheel_owned_sessions gauge
sessionwheel_owned_sessions 2
# HELP sessionwheel_owner_limit_evictions_total Sessions ended because their owner was at MaxPerOwner (also in sessions_ended_total{reason="evicted"}).
# TYPE sessionwheel_owner_limit_evictions_total counter
sessionwheel_owner_limit_evictions_total 1
# HELP sessionwheel_sessions_ended_total ` + helpEnded + `
# TYPE sessionwheel_sessions_ended_total counter
sessionwheel_sessions_ended_total{reason="absolute"} 0
sessionwheel_sessions_ended_total{reason="evicted"} 1
sessionwheel_sessions_ended_total{reason="explicit"} 0
sessionwheel_sessions_ended_total{reason="idle"} 0
sessionwheel_sessions_ended_total{reason="shutdown"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "sessionwheel_owners",
		"sessionwheel_owned_sessions", "sessionwheel_owner_limit_evictions_total", "sessionwheel_sessions_ended_total"); err != nil {
		t.Error(err)
	}
	m.ExpireOwner("alice") // the owner leaves: only bob is tracked
	const after = `
# HELP sessionwheel_owners Owners (Session.SetOwner: users, after a login) with at least one live session.
# TYPE sessionwheel_owners gauge
sessionwheel_owners 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(after), "sessionwheel_owners"); err != nil {
		t.Error(err)
	}
}

// TestFreshManager checks that every labelled series is there, at zero,
// from the first scrape, so that rate() and alerts see it start at 0.
func TestFreshManager(t *testing.T) {
	m := newManager(t, sessions.Config{})
	got := gather(t, metrics.New(m, nil))
	for name, want := range map[string]int{
		"sessionwheel_sessions_ended_total":  len(sessions.Reasons()),
		"sessionwheel_lookups_total":         3,
		"sessionwheel_create_failures_total": 2,
	} {
		ms := got[name].GetMetric()
		if len(ms) != want {
			t.Errorf("%s: %d series, want %d", name, len(ms), want)
		}
		for _, x := range ms {
			if v := x.GetCounter().GetValue(); v != 0 {
				t.Errorf("%s%v = %v, want 0", name, x.GetLabel(), v)
			}
		}
	}
	for _, r := range sessions.Reasons() {
		found := false
		for _, x := range got["sessionwheel_sessions_ended_total"].GetMetric() {
			found = found || x.GetLabel()[0].GetValue() == r.String()
		}
		if !found {
			t.Errorf("no sessions_ended_total series for reason %q", r)
		}
	}
}

// TestTwoManagers registers two managers on one registry, told apart by a
// constant label, and drives the rest of the reasons and failure causes.
func TestTwoManagers(t *testing.T) {
	// Manager "a" holds one session, ends it at its absolute timeout, and
	// refuses a second one while full.
	clkA := sessionstest.NewClock(time.Time{})
	a := newManager(t, sessions.Config{IdleTimeout: 10 * time.Second, AbsoluteTimeout: 3 * time.Second, Tick: time.Second, MaxSessions: 1, Clock: clkA})
	create(t, a, 1)
	if _, err := a.Create(); !errors.Is(err, sessions.ErrTooManySessions) {
		t.Fatalf("Create on a full manager: %v, want ErrTooManySessions", err)
	}
	clkA.Advance(3 * time.Second) // exactly the absolute timeout: lateness 0 whoever sweeps
	a.Sweep()

	// Manager "b" evicts its first session to make room for a second,
	// which Close ends with reason shutdown.
	clkB := sessionstest.NewClock(time.Time{})
	b := newManager(t, sessions.Config{Tick: time.Second, MaxSessions: 1, Evict: true, Clock: clkB})
	create(t, b, 2)

	for _, m := range []*sessions.Manager{a, b} {
		if err := m.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Create(); !errors.Is(err, sessions.ErrClosed) {
			t.Fatalf("Create on a closed manager: %v, want ErrClosed", err)
		}
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(metrics.New(a, prometheus.Labels{"manager": "a"}))
	reg.MustRegister(metrics.New(b, prometheus.Labels{"manager": "b"}))
	var already prometheus.AlreadyRegisteredError
	if err := reg.Register(metrics.New(b, prometheus.Labels{"manager": "b"})); !errors.As(err, &already) {
		t.Errorf("registering a second collector with the same labels: %v, want AlreadyRegisteredError", err)
	}

	const want = `
# HELP sessionwheel_sessions_created_total ` + helpCreated + `
# TYPE sessionwheel_sessions_created_total counter
sessionwheel_sessions_created_total{manager="a"} 1
sessionwheel_sessions_created_total{manager="b"} 2
# HELP sessionwheel_sessions_ended_total ` + helpEnded + `
# TYPE sessionwheel_sessions_ended_total counter
sessionwheel_sessions_ended_total{manager="a",reason="absolute"} 1
sessionwheel_sessions_ended_total{manager="a",reason="evicted"} 0
sessionwheel_sessions_ended_total{manager="a",reason="explicit"} 0
sessionwheel_sessions_ended_total{manager="a",reason="idle"} 0
sessionwheel_sessions_ended_total{manager="a",reason="shutdown"} 0
sessionwheel_sessions_ended_total{manager="b",reason="absolute"} 0
sessionwheel_sessions_ended_total{manager="b",reason="evicted"} 1
sessionwheel_sessions_ended_total{manager="b",reason="explicit"} 0
sessionwheel_sessions_ended_total{manager="b",reason="idle"} 0
sessionwheel_sessions_ended_total{manager="b",reason="shutdown"} 1
# HELP sessionwheel_sessions_active ` + helpActive + `
# TYPE sessionwheel_sessions_active gauge
sessionwheel_sessions_active{manager="a"} 0
sessionwheel_sessions_active{manager="b"} 0
# HELP sessionwheel_create_failures_total ` + helpFailures + `
# TYPE sessionwheel_create_failures_total counter
sessionwheel_create_failures_total{cause="closed",manager="a"} 1
sessionwheel_create_failures_total{cause="full",manager="a"} 1
sessionwheel_create_failures_total{cause="closed",manager="b"} 1
sessionwheel_create_failures_total{cause="full",manager="b"} 0
# HELP sessionwheel_expiry_lateness_seconds ` + helpLateness + `
# TYPE sessionwheel_expiry_lateness_seconds histogram
sessionwheel_expiry_lateness_seconds_bucket{manager="a",le="0.001"} 1
sessionwheel_expiry_lateness_seconds_bucket{manager="a",le="0.005"} 1
sessionwheel_expiry_lateness_seconds_bucket{manager="a",le="0.01"} 1
sessionwheel_expiry_lateness_seconds_bucket{manager="a",le="0.05"} 1
sessionwheel_expiry_lateness_seconds_bucket{manager="a",le="0.1"} 1
sessionwheel_expiry_lateness_seconds_bucket{manager="a",le="0.25"} 1
sessionwheel_expiry_lateness_seconds_bucket{manager="a",le="0.5"} 1
sessionwheel_expiry_lateness_seconds_bucket{manager="a",le="1"} 1
sessionwheel_expiry_lateness_seconds_bucket{manager="a",le="2"} 1
sessionwheel_expiry_lateness_seconds_bucket{manager="a",le="5"} 1
sessionwheel_expiry_lateness_seconds_bucket{manager="a",le="10"} 1
sessionwheel_expiry_lateness_seconds_bucket{manager="a",le="30"} 1
sessionwheel_expiry_lateness_seconds_bucket{manager="a",le="60"} 1
sessionwheel_expiry_lateness_seconds_bucket{manager="a",le="+Inf"} 1
sessionwheel_expiry_lateness_seconds_sum{manager="a"} 0
sessionwheel_expiry_lateness_seconds_count{manager="a"} 1
sessionwheel_expiry_lateness_seconds_bucket{manager="b",le="0.001"} 0
sessionwheel_expiry_lateness_seconds_bucket{manager="b",le="0.005"} 0
sessionwheel_expiry_lateness_seconds_bucket{manager="b",le="0.01"} 0
sessionwheel_expiry_lateness_seconds_bucket{manager="b",le="0.05"} 0
sessionwheel_expiry_lateness_seconds_bucket{manager="b",le="0.1"} 0
sessionwheel_expiry_lateness_seconds_bucket{manager="b",le="0.25"} 0
sessionwheel_expiry_lateness_seconds_bucket{manager="b",le="0.5"} 0
sessionwheel_expiry_lateness_seconds_bucket{manager="b",le="1"} 0
sessionwheel_expiry_lateness_seconds_bucket{manager="b",le="2"} 0
sessionwheel_expiry_lateness_seconds_bucket{manager="b",le="5"} 0
sessionwheel_expiry_lateness_seconds_bucket{manager="b",le="10"} 0
sessionwheel_expiry_lateness_seconds_bucket{manager="b",le="30"} 0
sessionwheel_expiry_lateness_seconds_bucket{manager="b",le="60"} 0
sessionwheel_expiry_lateness_seconds_bucket{manager="b",le="+Inf"} 0
sessionwheel_expiry_lateness_seconds_sum{manager="b"} 0
sessionwheel_expiry_lateness_seconds_count{manager="b"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"sessionwheel_sessions_created_total",
		"sessionwheel_sessions_ended_total",
		"sessionwheel_sessions_active",
		"sessionwheel_create_failures_total",
		"sessionwheel_expiry_lateness_seconds",
	); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) != 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// TestInvalidConstLabels: a constant label that clashes with a label of the
// collector's own makes registration fail, and a direct Collect sends
// invalid metrics instead of panicking in the scrape.
func TestInvalidConstLabels(t *testing.T) {
	m := newManager(t, sessions.Config{})
	for _, tc := range []struct {
		label   string
		invalid int
	}{
		{"reason", len(sessions.Reasons())}, // the series of sessions_ended_total
		{"result", 3},                       // lookups_total
		{"le", 28},                          // everything: it would clash in the histograms' exposition
		{"__reserved", 28},
	} {
		c := metrics.New(m, prometheus.Labels{tc.label: "x"})
		if err := prometheus.NewRegistry().Register(c); err == nil {
			t.Errorf("registering a collector with constant label %q succeeded", tc.label)
		}
		ch := make(chan prometheus.Metric, 64)
		c.Collect(ch)
		close(ch)
		n, invalid := 0, 0
		for x := range ch {
			n++
			if err := x.Write(&dto.Metric{}); err != nil {
				invalid++
			}
		}
		if n != 28 || invalid != tc.invalid {
			t.Errorf("constant label %q: %d metrics, %d invalid; want 28, %d", tc.label, n, invalid, tc.invalid)
		}
	}
}

// TestConcurrentScrapes gathers from two goroutines while sessions are
// created, touched and ended, for the race detector.
func TestConcurrentScrapes(t *testing.T) {
	clk := sessionstest.NewClock(time.Time{})
	m := newManager(t, sessions.Config{IdleTimeout: 10 * time.Second, Tick: time.Second, Clock: clk, Shards: 4})
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.New(m, nil))

	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := reg.Gather(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	ss := create(t, m, 1000)
	for i, s := range ss {
		m.Touch(s.ID())
		if i%3 == 0 {
			s.Expire()
		}
	}
	clk.Advance(time.Minute)
	m.Sweep()
	close(done)
	wg.Wait()

	got := gather(t, metrics.New(m, nil))
	if v := got["sessionwheel_sessions_created_total"].GetMetric()[0].GetCounter().GetValue(); v != 1000 {
		t.Errorf("created = %v, want 1000", v)
	}
	if v := got["sessionwheel_sessions_active"].GetMetric()[0].GetGauge().GetValue(); v != 0 {
		t.Errorf("active = %v, want 0", v)
	}
}
