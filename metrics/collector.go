package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessionwheel/sessionwheel/sessions"
)

// A Collector is a prometheus.Collector of one sessions.Manager's
// statistics. It holds no state besides the manager and its metric
// descriptions: each Collect reads the manager with one call of
// Manager.Stats. It is safe for concurrent use.
type Collector struct {
	m *sessions.Manager

	created, ended, discarded, active, touches, lookups, createFailures, renewals *prometheus.Desc
	restored                                                                      *prometheus.Desc
	refiles, bucketVisits, callbackPanics, callbackQueue, sweepHoldMax            *prometheus.Desc
	offHeap                                                                       *prometheus.Desc
	lateness, callbackDuration, lifetime                                          *prometheus.Desc
	owners, ownedSessions, ownerEvictions                                         *prometheus.Desc
	// A shared store's (sessions.Config.Store): sent only for a manager
	// that has one.
	storeOps, storeOpDuration, storeTouchWrites, storeClaims *prometheus.Desc
	redelivered, leasesLost, claimsAbandoned, dueBacklog     *prometheus.Desc
}

// New returns a collector of m's statistics; constLabels (may be nil) are
// added to every metric, e.g. prometheus.Labels{"manager": "web"}, to tell
// several managers apart in one registry. Register it with the caller's
// prometheus.Registerer; registering fails if constLabels are invalid (a bad
// name, or one of the collector's own labels: reason, result, cause, le).
// m must not be nil.
func New(m *sessions.Manager, constLabels prometheus.Labels) *Collector {
	if m == nil {
		panic("metrics: New called with a nil *sessions.Manager")
	}
	// NewDesc checks label names, but not a constant "le", which would
	// clash with the histograms' bucket label in the exposition.
	var bad error
	if _, ok := constLabels["le"]; ok {
		bad = errors.New(`metrics: constant label "le" is reserved for histogram buckets`)
	}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		if bad != nil {
			return prometheus.NewInvalidDesc(bad)
		}
		return prometheus.NewDesc("sessionwheel_"+name, help, labels, constLabels)
	}
	return &Collector{
		m: m,
		created: d("sessions_created_total",
			"Sessions created (a renewal creates none)."),
		ended: d("sessions_ended_total",
			"Sessions ended, by reason: idle (idle timeout), absolute (absolute timeout), explicit (Expire, a logout), shutdown (manager closed), evicted (manager full).",
			"reason"),
		discarded: d("sessions_discarded_total",
			"Sessions dropped without ending by Close under DiscardOnClose: created + restored = active + ended + discarded."),
		restored: d("sessions_restored_total",
			"Sessions read from a snapshot when the manager started (Config.Restore), including those that ended at once."),
		active: d("sessions_active",
			"Live sessions, including any past their deadline that the driver has not yet ended."),
		touches: d("touches_total",
			"Touches of live sessions (each request presenting a live session's cookie makes one)."),
		lookups: d("lookups_total",
			"Lookups of sessions by ID, by result: hit (live session), miss (unknown, ended or past its deadline), rejected (malformed ID text, never looked up).",
			"result"),
		createFailures: d("create_failures_total",
			"Session creations refused, by cause: full (MaxSessions reached, no eviction), closed (manager closed).",
			"cause"),
		renewals: d("renewals_total",
			"Sessions moved to a new ID by Renew (after a login)."),
		refiles: d("wheel_refiles_total",
			"Timing wheel entries that came due for a session touched since it was filed, and were filed again at its new deadline: the whole cost of lazy touching."),
		bucketVisits: d("wheel_bucket_visits_total",
			"Timing wheel buckets emptied by the driver: its work apart from handling sessions."),
		callbackPanics: d("callback_panics_total",
			"Expiry callbacks that panicked (recovered) or called runtime.Goexit; the session's other callbacks ran."),
		callbackQueue: d("callback_queue_length",
			"Endings whose expiry callbacks have not finished; at the configured QueueLen the driver stops ending sessions until the workers catch up."),
		offHeap: d("table_offheap_bytes",
			"Memory the session table holds outside the Go heap (its arrays on huge pages): in the process's resident memory, not in go_memstats."),
		sweepHoldMax: d("sweep_hold_max_seconds",
			"Longest time the driver has held one shard's lock in one batch, since the manager started."),
		lateness: d("expiry_lateness_seconds",
			"Time from a session's deadline (rounded up to a whole tick) to its ending, for idle and absolute endings."),
		callbackDuration: d("callback_duration_seconds",
			"Time the expiry callbacks of one ending took together, for endings that have callbacks."),
		lifetime: d("session_lifetime_seconds",
			"Time from a session's creation to its ending, for every reason."),
		owners: d("owners",
			"Owners (Session.SetOwner: users, after a login) with at least one live session."),
		ownedSessions: d("owned_sessions",
			"Live sessions that have an owner."),
		ownerEvictions: d("owner_limit_evictions_total",
			`Sessions ended because their owner was at MaxPerOwner (also in sessions_ended_total{reason="evicted"}).`),
		storeOps: d("store_ops_total",
			"Operations on the shared store (Config.Store), by op (create, lookup, touch, expire, renew, claim, ack, ...) and result: ok (a miss included), error (unavailable: Redis down or too slow).",
			"op", "result"),
		storeOpDuration: d("store_op_duration_seconds",
			"Latency of operations on the shared store, by op.", "op"),
		storeTouchWrites: d("store_touch_writes_total",
			"Touches that wrote a new deadline to the shared store; the others fell within the slack."),
		storeClaims: d("store_claims_total",
			"Claims of due endings from the shared store, by result: members (some claimed), empty (nothing due).",
			"result"),
		redelivered: d("store_endings_redelivered_total",
			"Endings claimed again because an earlier claim's lease ran out without an acknowledgement: their callbacks may run twice."),
		leasesLost: d("store_ack_leases_lost_total",
			"Acknowledgements the shared store refused because the claim's lease had run out (the ending was or will be offered again)."),
		claimsAbandoned: d("store_claims_abandoned_total",
			"Claimed endings given back unrun because their values could not be read; they are offered again."),
		dueBacklog: d("store_due_backlog",
			"Sessions past their deadline in the shared store and not yet claimed, as last sampled."),
	}
}

// Describe sends the descriptions of every metric the collector exports.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range [...]*prometheus.Desc{
		c.created, c.ended, c.discarded, c.restored, c.active, c.touches, c.lookups, c.createFailures, c.renewals,
		c.refiles, c.bucketVisits, c.callbackPanics, c.callbackQueue, c.sweepHoldMax, c.offHeap,
		c.lateness, c.callbackDuration, c.lifetime,
		c.owners, c.ownedSessions, c.ownerEvictions,
		c.storeOps, c.storeOpDuration, c.storeTouchWrites, c.storeClaims,
		c.redelivered, c.leasesLost, c.claimsAbandoned, c.dueBacklog,
	} {
		ch <- d
	}
}

// Collect reads the manager's statistics once and sends them as metrics.
// Labelled series are all sent, at zero if nothing has been counted, from
// the first scrape. A metric that cannot be built (invalid constant labels,
// which registration reports first) is sent as an invalid metric, so that
// gathering fails with the reason rather than panicking.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.m.Stats()
	emit := func(d *prometheus.Desc, m prometheus.Metric, err error) {
		if err != nil {
			m = prometheus.NewInvalidMetric(d, err)
		}
		ch <- m
	}
	counter := func(d *prometheus.Desc, v uint64, labelValues ...string) {
		m, err := prometheus.NewConstMetric(d, prometheus.CounterValue, float64(v), labelValues...)
		emit(d, m, err)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		m, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, v)
		emit(d, m, err)
	}
	histogram := func(d *prometheus.Desc, h sessions.Histogram) {
		m, err := constHistogram(d, h)
		emit(d, m, err)
	}

	counter(c.created, st.Created)
	for _, r := range sessions.Reasons() {
		counter(c.ended, st.Ended[r], r.String())
	}
	counter(c.discarded, st.Discarded)
	counter(c.restored, st.Restored)
	gauge(c.active, float64(st.Active))
	counter(c.touches, st.Touches)
	counter(c.lookups, st.LookupHits, "hit")
	counter(c.lookups, st.LookupMisses, "miss")
	counter(c.lookups, st.LookupRejected, "rejected")
	counter(c.createFailures, st.CreateFailedFull, "full")
	counter(c.createFailures, st.CreateFailedClosed, "closed")
	counter(c.renewals, st.Renewed)
	counter(c.refiles, st.Refiles)
	counter(c.bucketVisits, st.BucketVisits)
	counter(c.callbackPanics, st.CallbackPanics)
	gauge(c.callbackQueue, float64(st.CallbackQueue))
	gauge(c.sweepHoldMax, st.MaxSweepHold.Seconds())
	gauge(c.offHeap, float64(st.OffHeapBytes))
	histogram(c.lateness, st.Lateness)
	histogram(c.callbackDuration, st.CallbackDuration)
	histogram(c.lifetime, st.Lifetime)
	gauge(c.owners, float64(st.Owners))
	gauge(c.ownedSessions, float64(st.OwnedSessions))
	counter(c.ownerEvictions, st.OwnerEvictions)
	if c.m.Config().Store == nil {
		return
	}
	ss := st.Store
	for _, op := range ss.Ops {
		counter(c.storeOps, op.OK, op.Name, "ok")
		counter(c.storeOps, op.Errors, op.Name, "error")
		m, err := constHistogram(c.storeOpDuration, op.Duration, op.Name)
		emit(c.storeOpDuration, m, err)
	}
	counter(c.storeTouchWrites, ss.TouchWrites)
	counter(c.storeClaims, ss.Claims, "members")
	counter(c.storeClaims, ss.EmptyClaims, "empty")
	counter(c.redelivered, ss.Redelivered)
	counter(c.leasesLost, ss.LeasesLost)
	counter(c.claimsAbandoned, ss.Abandoned)
	gauge(c.dueBacklog, float64(ss.DueBacklog))
}

// constHistogram converts an engine histogram to a Prometheus one. The
// engine counts each bucket on its own (Counts[i] is the number of
// observations in (Bounds[i-1], Bounds[i]]) and has one more count, for
// observations above the last bound; Prometheus wants, for each upper bound,
// the number of observations at or below it, with the overflow only in the
// implicit +Inf bucket, which is the total count.
func constHistogram(d *prometheus.Desc, h sessions.Histogram, labelValues ...string) (prometheus.Metric, error) {
	buckets := make(map[float64]uint64, len(h.Bounds))
	var cumulative uint64
	for i, bound := range h.Bounds {
		if i < len(h.Counts) {
			cumulative += h.Counts[i]
		}
		buckets[bound] = cumulative
	}
	// The engine computes Count as the sum of Counts; taking the larger
	// keeps the +Inf bucket from ever being below a finite one.
	return prometheus.NewConstHistogram(d, max(h.Count, cumulative), h.Sum, buckets, labelValues...)
}
