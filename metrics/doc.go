// Package metrics exports a sessions.Manager's statistics to Prometheus.
//
// The engine already counts everything worth watching (sessions created and
// ended, touches, lookups, wheel work, callback trouble, and three
// histograms) with atomics and with counters kept under shard locks its hot
// paths hold anyway; see sessions.Stats. A Collector adds nothing to those
// paths: it keeps no counters of its own and no state at all, and reads the
// manager only when Prometheus scrapes, with one call of Manager.Stats per
// scrape, turning the snapshot into constant metrics. Creating and touching
// sessions cost the same with or without a registered Collector
// (BenchmarkTouch shows it).
//
// There is no global state: New returns a Collector and the caller registers
// it on the prometheus.Registerer of its choice. Several managers in one
// process are told apart by constant labels chosen by the caller:
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(metrics.New(web, prometheus.Labels{"manager": "web"}))
//	reg.MustRegister(metrics.New(api, prometheus.Labels{"manager": "api"}))
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// # Metrics
//
// Every name starts with sessionwheel_. Every labelled series exists from the
// first scrape, at zero if nothing has happened yet, so that rate() and
// alerts see a series start at 0 rather than appear mid-way.
//
//	sessionwheel_sessions_created_total         counter   sessions created (Renew creates none)
//	sessionwheel_sessions_ended_total           counter   sessions ended, by reason: idle, absolute, explicit, shutdown, evicted
//	sessionwheel_sessions_active                gauge     live sessions
//	sessionwheel_touches_total                  counter   touches of live sessions
//	sessionwheel_lookups_total                  counter   lookups by ID, by result: hit, miss, rejected (malformed cookie text)
//	sessionwheel_create_failures_total          counter   failed Create calls, by cause: full, closed
//	sessionwheel_renewals_total                 counter   sessions moved to a new ID by Renew
//	sessionwheel_wheel_refiles_total            counter   wheel entries filed again because their session was touched
//	sessionwheel_wheel_bucket_visits_total      counter   wheel buckets emptied by the driver
//	sessionwheel_callback_panics_total          counter   expiry callbacks that panicked (recovered)
//	sessionwheel_callback_queue_length          gauge     endings whose callbacks have not finished
//	sessionwheel_sweep_hold_max_seconds         gauge     longest hold of a shard lock by the driver, since start
//	sessionwheel_table_offheap_bytes            gauge     memory of the table outside the Go heap (huge pages)
//	sessionwheel_expiry_lateness_seconds        histogram how long after its deadline the driver ended a session
//	sessionwheel_callback_duration_seconds      histogram time the callbacks of one ending took together
//	sessionwheel_session_lifetime_seconds       histogram time from creation to ending
//	sessionwheel_sessions_restored_total        counter   sessions read from a snapshot at start
//	sessionwheel_owners                         gauge     owners with a live session
//	sessionwheel_owned_sessions                 gauge     live sessions that have an owner
//	sessionwheel_owner_limit_evictions_total    counter   sessions evicted because their owner was at MaxPerOwner
//
// A manager on a shared store (sessions.Config.Store, e.g. redisstore) also
// has these, and counts its own creations, claimed endings, touches and
// lookups in the ones above (sessions_active is the store's count, for all
// processes):
//
//	sessionwheel_store_ops_total                counter   store operations, by op and result: ok, error (unavailable)
//	sessionwheel_store_op_duration_seconds      histogram store operation latency, by op
//	sessionwheel_store_touch_writes_total       counter   touches that wrote a new deadline (the rest fell within the slack)
//	sessionwheel_store_claims_total             counter   claims of due endings, by result: members, empty
//	sessionwheel_store_endings_redelivered_total counter  endings claimed again after a lease ran out unacknowledged
//	sessionwheel_store_ack_leases_lost_total    counter   acknowledgements refused: the lease had run out
//	sessionwheel_store_claims_abandoned_total   counter   claimed endings given back unrun (values unreadable)
//	sessionwheel_store_due_backlog              gauge     sessions past their deadline not yet claimed
//
// # Histogram buckets
//
// The buckets are the engine's (the Collector converts its per-bucket counts
// to Prometheus's cumulative ones; upper bounds are inclusive in both):
//
//   - sessionwheel_expiry_lateness_seconds: sessions.LatenessBounds(), 1 ms to
//     1 minute (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60).
//     A session ends between 0 and 1 tick after its deadline (Config.Tick,
//     1 s by default, often 100 ms), plus scheduling delay; the buckets
//     resolve both common ticks and show a driver that falls behind by
//     seconds or more. Only idle and absolute endings are observed: the
//     others have no deadline to be late for.
//   - sessionwheel_session_lifetime_seconds: sessions.LifetimeBounds(), 1 s to
//     1 day (1, 10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400),
//     covering a bounce, the 15-minute default idle timeout, and a working
//     day. Observed for every reason.
//   - sessionwheel_callback_duration_seconds: sessions.CallbackDurationBounds(),
//     10 µs to 10 s (1e-05, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1,
//     0.5, 1, 10): from a callback that logs a line to one that calls a slow
//     remote service. Only endings with callbacks (NotifyOnExpire or
//     Config.OnExpire) are observed.
//
// Lateness is measured from the session's end as the engine keeps it
// (sessions.Session.Deadline): the last touch plus the idle timeout (or the
// creation plus the absolute timeout), rounded up to a whole tick, never
// before the exact deadline. So it says how well the driver keeps up, not
// how coarse the tick is: the driver wakes at the tick a session ends at,
// so when it keeps up, lateness is the timer's and the sweep's delay, well
// under a tick.
package metrics
