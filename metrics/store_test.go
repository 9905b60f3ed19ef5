package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sessionwheel/sessionwheel/metrics"
	"github.com/sessionwheel/sessionwheel/sessions"
	"github.com/sessionwheel/sessionwheel/sessions/sessionstest"
)

// statsStore is the fake shared store with fixed store counters, standing
// for redisstore's.
type statsStore struct {
	*sessionstest.Store
	st sessions.StoreStats
}

func (s statsStore) Stats() sessions.StoreStats { return s.st }

func TestSharedStore(t *testing.T) {
	clk := sessionstest.NewClock(time.Time{})
	st := statsStore{sessionstest.NewStore(clk, 0), sessions.StoreStats{
		Ops: []sessions.StoreOp{{Name: "lookup", OK: 7, Errors: 2, Duration: sessions.Histogram{
			Bounds: []float64{0.001, 0.01}, Counts: []uint64{5, 3, 1}, Count: 9, Sum: 0.05}}},
		TouchWrites: 3, Claims: 4, EmptyClaims: 5, Redelivered: 1, LeasesLost: 2, Abandoned: 0, DueBacklog: 6,
	}}
	m := newManager(t, sessions.Config{Clock: clk, Store: st})
	create(t, m, 2)
	c := metrics.New(m, nil)
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
	const want = `
# HELP sessionwheel_sessions_active Live sessions, including any past their deadline that the driver has not yet ended.
# TYPE sessionwheel_sessions_active gauge
sessionwheel_sessions_active 2
# HELP sessionwheel_sessions_created_total Sessions created (a renewal creates none).
# TYPE sessionwheel_sessions_created_total counter
sessionwheel_sessions_created_total 2
# HELP sessionwheel_store_ops_total Operations on the shared store (Config.Store), by op (create, lookup, touch, expire, renew, claim, ack, ...) and result: ok (a miss included), error (unavailable: Redis down or too slow).
# TYPE sessionwheel_store_ops_total counter
sessionwheel_store_ops_total{op="lookup",result="error"} 2
sessionwheel_store_ops_total{op="lookup",result="ok"} 7
# HELP sessionwheel_store_op_duration_seconds Latency of operations on the shared store, by op.
# TYPE sessionwheel_store_op_duration_seconds histogram
sessionwheel_store_op_duration_seconds_bucket{op="lookup",le="0.001"} 5
sessionwheel_store_op_duration_seconds_bucket{op="lookup",le="0.01"} 8
sessionwheel_store_op_duration_seconds_bucket{op="lookup",le="+Inf"} 9
sessionwheel_store_op_duration_seconds_sum{op="lookup"} 0.05
sessionwheel_store_op_duration_seconds_count{op="lookup"} 9
# HELP sessionwheel_store_claims_total Claims of due endings from the shared store, by result: members (some claimed), empty (nothing due).
# TYPE sessionwheel_store_claims_total counter
sessionwheel_store_claims_total{result="empty"} 5
sessionwheel_store_claims_total{result="members"} 4
# HELP sessionwheel_store_due_backlog Sessions past their deadline in the shared store and not yet claimed, as last sampled.
# TYPE sessionwheel_store_due_backlog gauge
sessionwheel_store_due_backlog 6
# HELP sessionwheel_store_ack_leases_lost_total Acknowledgements the shared store refused because the claim's lease had run out (the ending was or will be offered again).
# TYPE sessionwheel_store_ack_leases_lost_total counter
sessionwheel_store_ack_leases_lost_total 2
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "sessionwheel_sessions_active", "sessionwheel_sessions_created_total",
		"sessionwheel_store_ops_total", "sessionwheel_store_op_duration_seconds", "sessionwheel_store_claims_total",
		"sessionwheel_store_due_backlog", "sessionwheel_store_ack_leases_lost_total"); err != nil {
		t.Error(err)
	}
	// A manager in memory sends none of the store's metrics.
	mem := metrics.New(newManager(t, sessions.Config{Clock: clk}), nil)
	if n := testutil.CollectAndCount(mem, "sessionwheel_store_ops_total", "sessionwheel_store_due_backlog"); n != 0 {
		t.Errorf("a manager in memory sends %d store series", n)
	}
}
