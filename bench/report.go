package main

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
)

// A result is one number: results.json holds a list of them.
type result struct {
	Scenario string  `json:"scenario"`
	Engine   string  `json:"engine"`
	Sessions int     `json:"sessions"`
	Metric   string  `json:"metric"`
	Value    float64 `json:"value"`
}

// machine is the header of the report and the "machine" object of
// results.json.
type machine struct {
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Go         string `json:"go"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	Date       string `json:"date"`
	Command    string `json:"command"`
	Quick      bool   `json:"quick"`
	Runs       int    `json:"runs"`
	ExpiryRuns int    `json:"expiry_runs"`
	TouchOps   int    `json:"touch_ops"`
	Tick       string `json:"expiry_tick"`
	Elapsed    string `json:"elapsed"`
	// GCFloorMs is a forced GC of the harness with no engine: the part of
	// every gc number that no engine causes.
	GCFloorMs float64 `json:"gc_floor_ms"`
	// StallMaxMs and Stalls1ms: while every P ran a goroutine that only
	// reads the clock, for StallWindow, the longest gap one of them saw
	// between two reads, and the gaps over 1 ms (see stalls).
	StallMaxMs  float64 `json:"stall_max_ms"`
	Stalls1ms   int     `json:"stalls_over_1ms"`
	StallWindow string  `json:"stall_window"`
	// HugePages says whether sessionwheel's table was on huge pages
	// (SESSIONWHEEL_HUGEPAGES=off keeps it on the heap) and the system's
	// transparent huge page mode.
	HugePages string `json:"huge_pages"`
}

// latenessCurve is a lateness distribution for the plot: ms[i] is the
// q[i]-quantile, at n sessions.
type latenessCurve struct {
	n     int
	q, ms []float64
}

// report is everything a run found.
type report struct {
	machine  machine
	results  []result
	notes    []string
	lateness map[string]latenessCurve // by engine, at the largest size measured
	http     httpSummary
	redis    redisSummary
}

// redisSummary describes the Redis group's setup for the report.
type redisSummary struct {
	ran             bool
	version         string
	defaultListpack string // the server's hash-max-listpack-value at start
	hot, sessions   int
	endings         int
	duration        string
	latOps          int
}

// httpSummary describes the HTTP scenario's setup for the report.
type httpSummary struct {
	ran            bool
	sessions       int
	conns          int
	duration       string
	adapter        string // what the sessionwheel middleware is
	bareBody, note string
}

// value returns a result, if there is one.
func (r *report) value(scenario, engine string, n int, metric string) (float64, bool) {
	for _, x := range r.results {
		if x.Scenario == scenario && x.Engine == engine && x.Sessions == n && x.Metric == metric {
			return x.Value, true
		}
	}
	return 0, false
}

// sizes returns the session counts of the engine scenarios, ascending.
func (r *report) sizes() []int {
	var s []int
	for _, x := range r.results {
		if x.Scenario != scHTTP && x.Scenario != scHTTPInproc && !isRedisScenario(x.Scenario) && !slices.Contains(s, x.Sessions) {
			s = append(s, x.Sessions)
		}
	}
	slices.Sort(s)
	return s
}

func (r *report) engines() []string {
	var names []string
	for _, k := range engineKinds {
		for _, x := range r.results {
			if x.Engine == k.name && x.Scenario != scHTTP && x.Scenario != scHTTPInproc && !isRedisScenario(x.Scenario) {
				names = append(names, k.name)
				break
			}
		}
	}
	return names
}

// A goal is one of the issues' targets for sessionwheel (issue #5's
// against stdtimer, issue #14's for touches during a burst and shared
// callbacks).
type goal struct {
	what             string
	issue            int
	scenario, metric string
	target           float64
	kind             goalKind
	higherIsBetter   bool
	n                int // the size the goal is set at; 0: the largest measured
}

type goalKind int

const (
	vsBaseline goalKind = iota // target is a ratio to stdtimer
	inTicks                    // target is a number of ticks of the expiry scenarios
	absolute                   // target is in the metric's own unit
	vsBareGC                   // target is a ratio to sessionwheel's own forced GC (scenario gc) at the same size
)

var goals = []goal{
	{what: "touch, random order", issue: 5, scenario: scTouchRandom, metric: mNsOp, target: 0.5},
	{what: "touch, random order", issue: 14, scenario: scTouchRandom, metric: mNsOp, target: 0.15},
	{what: "create", issue: 5, scenario: scCreate, metric: mNsOp, target: 0.3},
	{what: "create", issue: 14, scenario: scCreate, metric: mNsOp, target: 0.3, n: 1_000_000},
	{what: "bytes per session", issue: 5, scenario: scMemory, metric: mBytes, target: 0.4},
	{what: "forced GC", issue: 5, scenario: scGC, metric: mMs, target: 0.1},
	{what: "expiry throughput", issue: 5, scenario: scBurst, metric: mRate, target: 10, higherIsBetter: true},
	{what: "expiry lateness p99", issue: 5, scenario: scLateness, metric: mP99Ms, target: 1, kind: inTicks},
	{what: "touch p99.9 while half end", issue: 14, scenario: scTouchBurst, metric: mP999Us, target: 10, kind: absolute, n: 1_000_000},
	{what: "touch p99.9 while half end", issue: 14, scenario: scTouchBurst, metric: mP999Us, target: 10, kind: absolute},
	{what: "touch max while half end", issue: 14, scenario: scTouchBurst, metric: mMaxUs, target: 1000, kind: absolute, n: 1_000_000},
	{what: "touch max while half end", issue: 14, scenario: scTouchBurst, metric: mMaxUs, target: 1000, kind: absolute},
	{what: "endings while a toucher runs", issue: 14, scenario: scTouchBurst, metric: mRate, target: 3e6, kind: absolute, higherIsBetter: true},
	{what: "one shared callback per session", issue: 14, scenario: scMemShared, metric: mBytes, target: 80, kind: absolute, n: 1_000_000},
	{what: "forced GC, one shared callback per session", issue: 14, scenario: scMemShared, metric: mMs, target: 2, kind: vsBareGC, n: 1_000_000},
}

// The engines a ratio is taken against.
const (
	us       = "sessionwheel"
	baseline = "stdtimer"
	peer     = "otter"
)

func (r *report) markdown(p params) string {
	var w strings.Builder
	m := r.machine
	pf := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }

	pf("# sessionwheel benchmark results\n\n")
	pf("| | |\n|---|---|\n")
	pf("| CPU | %s |\n", m.CPU)
	pf("| cores, GOMAXPROCS | %d, %d |\n", m.Cores, m.GOMAXPROCS)
	pf("| Go | %s %s/%s |\n", m.Go, m.OS, m.Arch)
	pf("| date | %s |\n", m.Date)
	pf("| command | `%s` |\n", strings.TrimSpace(m.Command))
	pf("| method | a warm-up, then %d measured runs of each number (expiry scenarios: %d); the tables show medians. Ratios divide sessionwheel's number by stdtimer's and by otter's from this same run. |\n", m.Runs, m.ExpiryRuns)
	pf("| forced GC with no engine | %s ms (part of every gc number) |\n", num(m.GCFloorMs))
	pf("| the machine's own stalls | longest %s ms, %d over 1 ms in %s, with every P busy reading the clock: no engine, no lock (a floor under every max) |\n", num(m.StallMaxMs), m.Stalls1ms, m.StallWindow)
	pf("| sessionwheel's table on huge pages | %s |\n", m.HugePages)
	pf("| elapsed | %s |\n\n", m.Elapsed)
	if m.Quick {
		pf("**This is a `-quick` smoke run**: sizes are small and runs few, so the numbers are indicative only. The goals are set for 10M sessions: run `make bench` for them.\n\n")
	}

	pf("## Engines: what each does per operation\n\n")
	pf("Every engine uses `sessions.ID` (128 random bits) and reads crypto/rand in 4 KiB blocks for its IDs; the two timer baselines share one table (64 `sync.Mutex` shards of `map[sessions.ID]*entry`, chosen by the same ID byte as sessionwheel's shards), so that only the tracking of timeouts differs between them.\n\n")
	for _, k := range engineKinds {
		if slices.ContainsFunc(p.engines, func(e engineKind) bool { return e.name == k.name }) {
			pf("- **%s**: %s\n", k.name, k.perOp)
		}
	}
	pf("\nSteady-state scenarios (create, memory, gc, touch) use an idle timeout of 30 min and a tick of 1 s (sessionwheel's default), so nothing expires while they run; the expiry scenarios use a tick of %s.\n\n", m.Tick)

	sizes := r.sizes()
	engines := r.engines()
	if len(sizes) > 0 {
		r.goalsTable(&w, sizes)
	}
	for _, n := range sizes {
		pf("## %s live sessions\n\n", groupDigits(n))
		pf("| scenario | metric |")
		for _, e := range engines {
			pf(" %s |", e)
		}
		pf(" sessionwheel ÷ stdtimer | sessionwheel ÷ otter |\n|---|---|")
		for range engines {
			pf("---:|")
		}
		pf("---:|---:|\n")
		for _, row := range r.rows(n) {
			pf("| %s | %s |", row[0], row[1])
			for _, e := range engines {
				if v, ok := r.value(row[0], e, n, row[1]); ok {
					pf(" %s |", num(v))
				} else {
					pf(" – |")
				}
			}
			pf(" %s | %s |\n", r.ratio(row[0], row[1], n, baseline), r.ratio(row[0], row[1], n, peer))
		}
		pf("\n")
	}
	if r.http.ran {
		r.httpTable(&w)
	}
	if r.redis.ran {
		r.redisTable(&w)
	}
	if len(r.notes) > 0 {
		pf("## Notes from this run\n\n")
		for _, n := range r.notes {
			pf("- %s\n", n)
		}
		pf("\n")
	}
	pf("## Plots\n\n")
	for i, f := range plotFiles {
		pf("![%s](%s)\n", plotTitles[i], f)
	}
	pf("\n## How to read this\n\n")
	pf("- **create** (ns/op, allocs/op): time to create N sessions one after another in a fresh engine, divided by N; includes the growth of the tables and the garbage collections it causes.\n")
	pf("- **memory** (bytes/session): live heap after `runtime.GC()` with N sessions, minus the heap of the empty engine, plus what sessionwheel holds off the heap (`Stats.OffHeapBytes`: its table on huge pages), divided by N.\n")
	pf("- **memory-callback-shared / memory-callback-closure** (bytes/session, ms; sessionwheel only): memory and forced GC with one `NotifyOnExpire` per session, the same func value for all (kept once per shard) or a distinct closure each. The baselines already hold a func per session.\n")
	pf("- **gc** (ms): wall time of one forced `runtime.GC()` with N live sessions: what every collection of a server holding them pays in CPU. Pointer-free records cost the collector nothing.\n")
	pf("- **touch-seq / touch-random** (ns/op): one goroutine touches %s live sessions per run in creation order, or in a precomputed random order (the cache-hostile case). The `-parallel` variants split the same work among GOMAXPROCS goroutines; ns/op is wall time over all touches.\n", groupDigits(m.TouchOps))
	pf("- **expiry-burst** (expiries/s, drain-ms, first-ms): N sessions come due at the same instant (engines with a clock create them while it is frozen, half a tick into a tick; the others are given the time left to a common deadline set far enough ahead); callbacks only count. Throughput is N over the drain: the time from the deadline (or from the first callback, if that came earlier) to the last callback. first-ms is how late the first callback came (negative: early): it shows the engine's granularity.\n")
	pf("- **touch-during-burst** (p50-us, p99.9-us, max-us, max-lock-hold-us, expiries/s): while half of N sessions end at once (created on a frozen clock, the survivors shortly before the first half comes due, with an idle timeout of at least 2 µs per session so that they outlive the burst), one goroutine touches the survivors in random order; each touch is timed from the deadline until the last callback. The longest touch bounds the longest wait for a lock a toucher sees. max-lock-hold-us: sessionwheel's longest hold of a shard lock by its driver (Stats.MaxSweepHold). expiries/s: the half that ends over the time from its deadline to its last callback, with the toucher running. Engines without a clock do not run it.\n")
	pf("- **peak-goroutines, peak-stack-MiB** (in both expiry scenarios): the most goroutines alive, and the most memory their stacks held, while the sessions expired. stdtimer, timingwheel and otter start one goroutine per expiry; stdtimer starts them faster than they finish. To keep a shared machine out of memory, the harness stops a run whose stacks pass three quarters of a budget (-stack-budget; by default half the memory available at start), and skips a size whose stacks, extrapolated from a smaller one, would pass 80%% of it; the notes say when.\n")
	pf("- **expiry-lateness** (ms, due-per-s): N sessions created as fast as the engine allows, with an idle timeout longer than their creation takes, so they come due at that pace (due-per-s: a faster engine faces a faster stream of expiries). Lateness is callback time minus (creation time + idle timeout), on the real clock; negative means early. sessionwheel rounds deadlines up to whole ticks, so by design its lateness is between 0 and 1 tick plus scheduling delay; otter files entries in timer-wheel buckets of 2^30 ns (1.07 s) and expires a bucket once its span has passed.\n")
	pf("- **http** (req/s, p50-us, p99-us, allocs/req): keep-alive clients on loopback present random live session cookies; allocs/req counts the whole process (client and server), so compare with the bare handler. **http-inproc** (ns/op, allocs/op) runs the handler chain in process without the network, which isolates the middleware's own cost; overhead-ns/op is that minus the bare handler.\n")
	return w.String()
}

// rows lists the (scenario, metric) pairs measured at n, in report order.
func (r *report) rows(n int) [][2]string {
	order := []string{scCreate, scMemory, scMemShared, scMemClosure, scGC, scTouchSeq, scTouchRandom, scTouchSeqPar, scTouchRandomPar, scBurst, scTouchBurst, scLateness}
	var rows [][2]string
	for _, sc := range order {
		for _, x := range r.results {
			if x.Scenario == sc && x.Sessions == n && !slices.Contains(rows, [2]string{sc, x.Metric}) {
				rows = append(rows, [2]string{sc, x.Metric})
			}
		}
	}
	return rows
}

func (r *report) ratio(scenario, metric string, n int, against string) string {
	a, ok1 := r.value(scenario, us, n, metric)
	b, ok2 := r.value(scenario, against, n, metric)
	if !ok1 || !ok2 || b == 0 || slices.Contains([]string{mMinMs, mP50Ms, mMaxMs, mFirstMs, mPace}, metric) {
		return "–"
	}
	return ratioText(a / b)
}

func ratioText(x float64) string {
	switch {
	case math.IsInf(x, 0) || math.IsNaN(x):
		return "–"
	case x < 0.001:
		return "<0.001x"
	case x < 0.1:
		return fmt.Sprintf("%.3fx", x)
	case x < 10:
		return fmt.Sprintf("%.2fx", x)
	}
	return fmt.Sprintf("%.0fx", x)
}

func (r *report) goalsTable(w *strings.Builder, sizes []int) {
	tickMs := 0.0
	if d, err := parseDurationMs(r.machine.Tick); err == nil {
		tickMs = d
	}
	fmt.Fprintf(w, "## Goals: sessionwheel against stdtimer (and otter), at the largest size measured\n\n")
	fmt.Fprintf(w, "| goal | issue | N | target | sessionwheel | stdtimer | otter | ÷ stdtimer | ÷ otter | met |\n|---|---:|---:|---|---:|---:|---:|---:|---:|---|\n")
	for _, g := range goals {
		n := g.n
		if n == 0 {
			// The largest size with the numbers the goal needs (an
			// engine's run may have been skipped at the largest).
			for _, s := range sizes {
				_, ok := r.value(g.scenario, us, s, g.metric)
				_, okb := r.value(g.scenario, baseline, s, g.metric)
				if ok && (okb || g.kind != vsBaseline) {
					n = s
				}
			}
		}
		a, ok := r.value(g.scenario, us, n, g.metric)
		if !ok {
			continue
		}
		b, okb := r.value(g.scenario, baseline, n, g.metric)
		o, oko := r.value(g.scenario, peer, n, g.metric)
		cell := func(v float64, ok bool) string {
			if !ok {
				return "–"
			}
			return num(v)
		}
		cmp := "≤"
		within := func(bound float64) bool { return a <= bound }
		if g.higherIsBetter {
			cmp = "≥"
			within = func(bound float64) bool { return a >= bound }
		}
		var target, met string
		switch g.kind {
		case inTicks:
			target = fmt.Sprintf("%s %g tick (%s)", cmp, g.target, r.machine.Tick)
			met = yesNo(within(g.target * tickMs))
		case absolute:
			target = fmt.Sprintf("%s %s %s", cmp, num(g.target), g.metric)
			met = yesNo(within(g.target))
		case vsBareGC:
			bare, okg := r.value(scGC, us, n, mMs)
			target = fmt.Sprintf("%s %gx bare (%s ms)", cmp, g.target, cell(bare, okg))
			met = yesNo(okg && within(g.target*bare))
		default:
			target = fmt.Sprintf("%s %gx stdtimer", cmp, g.target)
			met = yesNo(okb && within(g.target*b))
		}
		rb, ro := "–", "–"
		if okb && b != 0 {
			rb = ratioText(a / b)
		}
		if oko && o != 0 {
			ro = ratioText(a / o)
		}
		fmt.Fprintf(w, "| %s (%s) | #%d | %s | %s | %s | %s | %s | %s | %s | %s |\n", g.what, g.metric, g.issue, humanCount(n), target, num(a), cell(b, okb), cell(o, oko), rb, ro, met)
	}
	if sw, ok := r.value(scHTTPInproc, us, r.http.sessions, mOverhead); ok {
		scs, ok2 := r.value(scHTTPInproc, "scs", r.http.sessions, mOverhead)
		ratio, met := "–", "no"
		if ok2 && scs > 0 {
			ratio = ratioText(sw / scs)
			met = yesNo(sw <= 0.05*scs)
		}
		fmt.Fprintf(w, "| middleware overhead (%s, in process) | #5 | %s | ≤ 0.05x scs | %s | – | – | %s of scs | – | %s |\n", mOverhead, humanCount(r.http.sessions), num(sw), ratio, met)
	}
	fmt.Fprintf(w, "\nThe goals are set for 10M sessions (HTTP: 1M) unless N says otherwise; at smaller sizes they are indicative. N is the largest size at which the numbers a goal needs were measured. Maxima are bounded below by the machine's own stalls (the table at the top).\n\n")
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func parseDurationMs(s string) (float64, error) {
	var d float64
	var unit string
	if _, err := fmt.Sscanf(s, "%g%s", &d, &unit); err != nil {
		return 0, err
	}
	switch unit {
	case "ms":
		return d, nil
	case "s":
		return d * 1000, nil
	case "µs", "us":
		return d / 1000, nil
	}
	return 0, fmt.Errorf("unit %q", unit)
}

func (r *report) httpTable(w *strings.Builder) {
	h := r.http
	fmt.Fprintf(w, "## HTTP: %s live sessions, %d keep-alive connections on loopback\n\n", groupDigits(h.sessions), h.conns)
	fmt.Fprintf(w, "Each measured run lasts %s; clients present the cookie of a random live session on every request. %s\n\n", h.duration, h.adapter)
	fmt.Fprintf(w, "| variant | req/s | p50 µs | p99 µs | allocs/req | misses | in-process ns/op | in-process allocs/op | overhead ns/op |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, v := range httpVariants {
		cell := func(sc, metric string) string {
			if x, ok := r.value(sc, v.name, h.sessions, metric); ok {
				return num(x)
			}
			return "–"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", v.name,
			cell(scHTTP, mReqs), cell(scHTTP, mP50Us), cell(scHTTP, mP99Us), cell(scHTTP, mAllocsReq), cell(scHTTP, mMissedReqs),
			cell(scHTTPInproc, mNsOp), cell(scHTTPInproc, mAllocsOp), cell(scHTTPInproc, mOverhead))
	}
	fmt.Fprintf(w, "\n")
	for _, v := range httpVariants {
		fmt.Fprintf(w, "- **%s**: %s\n", v.name, v.perReq)
	}
	fmt.Fprintf(w, "\n")
}

// num formats a number for a table: three significant digits, thousands
// grouped.
func num(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 1000:
		return groupDigits(int(math.Round(v)))
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

func groupDigits(n int) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// jsonDoc is the layout of results.json.
type jsonDoc struct {
	Machine machine     `json:"machine"`
	Engines []engineDoc `json:"engines"`
	Results []result    `json:"results"`
	// Ratios divide sessionwheel's numbers of the Redis group by scs's
	// from the same run.
	Ratios []ratioDoc `json:"ratios"`
	// RedisGoals are issue #10's targets, evaluated on this run.
	RedisGoals []redisGoalResult `json:"redis_goals"`
	Notes      []string          `json:"notes"`
}

// ratioDoc is one of results.json's ratios: Of's value over Over's.
type ratioDoc struct {
	Scenario string  `json:"scenario"`
	Metric   string  `json:"metric"`
	Sessions int     `json:"sessions"`
	Of       string  `json:"of"`
	Over     string  `json:"over"`
	Value    float64 `json:"value"`
	// Goal is the issue's target for the ratio ("≥ 3x"), if it has one.
	Goal string `json:"goal,omitempty"`
	// Met says whether the goal was met; absent without a goal.
	Met *bool `json:"met,omitempty"`
}

type engineDoc struct {
	Name  string `json:"name"`
	PerOp string `json:"per_op"`
}

func (r *report) json() ([]byte, error) {
	d := jsonDoc{Machine: r.machine, Results: r.results, Notes: r.notes, Ratios: r.redisRatios(), RedisGoals: r.redisGoalResults()}
	if d.RedisGoals == nil {
		d.RedisGoals = []redisGoalResult{}
	}
	if d.Notes == nil {
		d.Notes = []string{}
	}
	for _, k := range engineKinds {
		d.Engines = append(d.Engines, engineDoc{k.name, k.perOp})
	}
	for _, v := range httpVariants {
		d.Engines = append(d.Engines, engineDoc{"http " + v.name, v.perReq})
	}
	if r.redis.ran {
		d.Engines = append(d.Engines,
			engineDoc{"redis " + us, redisPerReq[us]},
			engineDoc{"redis " + engineSCS, redisPerReq[engineSCS]},
			engineDoc{"redis " + engineSWCache, redisPerReq[engineSWCache]})
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
