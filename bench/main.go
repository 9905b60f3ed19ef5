package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/sessionwheel/sessionwheel/sessions"
)

// params is what one run of the harness measures, from the flags.
type params struct {
	sizes      []int
	quick      bool
	runs       int
	expiryRuns int // runs of the expiry scenarios: -runs, or 1 with -quick
	engines    []engineKind
	groups     map[string]bool
	touchOps   int
	warmUp     int
	steadyIdle time.Duration // idle timeout of the steady-state scenarios
	tick       time.Duration // tick of the expiry scenarios
	expiryIdle time.Duration
	http       httpParams
	redis      redisParams
	seed       uint64
	out        string
	progress   bool
	cpuProfile string
	stackMiB   int // -stack-budget
	command    string
}

// httpParams configure the HTTP scenario.
type httpParams struct {
	sessions int
	conns    int
	duration time.Duration
}

// Defaults of the full matrix and of -quick.
var (
	defaultSizes = []int{100_000, 1_000_000}
	quickSizes   = []int{10_000, 100_000}
)

func main() {
	p, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if err := run(p, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (params, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run . [flags]   (in bench/, a module of its own)\n\n"+
			"Runs sessionwheel against one time.Timer per session (stdtimer), RussellLuo/timingwheel\n"+
			"and otter, scs in the HTTP scenario, and its redisstore against scs's on a redis-server\n"+
			"it starts (group redis); prints results.md, or writes it with results.json\n"+
			"and PNG plots to -out.\n\nflags:\n")
		fs.PrintDefaults()
	}
	sizes := fs.String("sessions", "100000,1000000", "live `sessions` per measurement, a comma-separated list (k and M suffixes allowed, e.g. 100k,1M,10M)")
	quick := fs.Bool("quick", false, "a smoke run that finishes in well under a minute: 10k and 100k sessions, 2 runs (expiry: 1), 200k touches per run, 20k HTTP sessions for 300ms, redis group: 50k sessions, 500ms runs (flags given explicitly still apply)")
	out := fs.String("out", "", "write results.md, results.json and PNG plots into `dir` (created if missing); without it, results.md goes to standard output")
	runs := fs.Int("runs", 3, "measured runs of each scenario, after a warm-up; the report shows medians")
	engines := fs.String("engines", "sessionwheel,stdtimer,timingwheel,otter", "engines to run, comma-separated")
	scen := fs.String("scenarios", strings.Join(allGroups, ","), "scenario groups to run, comma-separated: "+strings.Join(allGroups, ", "))
	touchOps := fs.Int("touch-ops", 1_000_000, "touches per measured run of each touch scenario")
	tick := fs.Duration("tick", 10*time.Millisecond, "tick of sessionwheel, timingwheel and otter's clock in the expiry scenarios")
	expiryIdle := fs.Duration("expiry-idle", time.Second, "idle timeout in expiry-burst; in expiry-lateness, how much longer than creating the sessions the idle timeout is")
	httpSessions := fs.Int("http-sessions", 1_000_000, "live sessions in the HTTP scenario")
	httpConns := fs.Int("http-conns", 8, "keep-alive client connections in the HTTP scenario")
	httpDuration := fs.Duration("http-duration", 2*time.Second, "length of each measured HTTP run")
	seed := fs.Uint64("seed", 1, "seed of the random orders and cookie choices")
	progress := fs.Bool("progress", true, "show a progress bar on standard error")
	stackBudget := fs.Int("stack-budget", 0, "memory budget in `MiB` for the goroutine stacks of the expiry scenarios: a run is stopped at 3/4 of it, a size predicted to pass 80% is skipped (0: half the memory available at start)")
	redisServer := fs.String("redis-server", "redis-server", "`path` of the redis-server that the redis group starts (on a free port, without persistence); missing: the group is skipped with a note")
	redisSessions := fs.Int("redis-sessions", 100_000, "sessions created per run of the redis group's create and memory scenarios")
	redisHot := fs.Int("redis-hot", 10_000, "hot sessions the redis group's lookup scenarios spread over")
	redisEndings := fs.Int("redis-endings", 50_000, "sessions due at once in the redis group's endings scenario")
	redisDuration := fs.Duration("redis-duration", 3*time.Second, "length of each measured run of the redis group's 64-caller lookup scenario")
	redisLatOps := fs.Int("redis-latency-ops", 20_000, "lookups per run of the redis group's one-caller latency scenario")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to `file` (narrow it with -engines and -scenarios)")
	if err := fs.Parse(args); err != nil {
		return params{}, err
	}
	if fs.NArg() > 0 {
		return params{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	p := params{
		quick:      *quick,
		runs:       *runs,
		touchOps:   *touchOps,
		warmUp:     20000,
		steadyIdle: 30 * time.Minute,
		tick:       *tick,
		expiryIdle: *expiryIdle,
		http:       httpParams{sessions: *httpSessions, conns: *httpConns, duration: *httpDuration},
		redis: redisParams{server: *redisServer, hot: *redisHot, sessions: *redisSessions, endings: *redisEndings,
			duration: *redisDuration, latOps: *redisLatOps},
		seed:       *seed,
		out:        *out,
		progress:   *progress,
		cpuProfile: *cpuProfile,
		stackMiB:   *stackBudget,
		command:    "cd bench && go run . " + strings.Join(args, " "),
		groups:     map[string]bool{},
	}
	p.expiryRuns = p.runs
	var err error
	if p.sizes, err = parseSizes(*sizes); err != nil {
		return params{}, err
	}
	if p.quick {
		if !set["sessions"] {
			p.sizes = quickSizes
		}
		if !set["runs"] {
			p.runs = 2
			p.expiryRuns = 1
		}
		if !set["touch-ops"] {
			p.touchOps = 200_000
		}
		if !set["expiry-idle"] {
			p.expiryIdle = 200 * time.Millisecond
		}
		if !set["http-sessions"] {
			p.http.sessions = 20_000
		}
		if !set["http-duration"] {
			p.http.duration = 300 * time.Millisecond
		}
		if !set["redis-sessions"] {
			p.redis.sessions = 50_000
		}
		if !set["redis-endings"] {
			p.redis.endings = 20_000
		}
		if !set["redis-duration"] {
			p.redis.duration = 500 * time.Millisecond
		}
		if !set["redis-latency-ops"] {
			p.redis.latOps = 3_000
		}
	}
	for _, name := range strings.Split(*engines, ",") {
		k, ok := engineByName(strings.TrimSpace(name))
		if !ok {
			return params{}, fmt.Errorf("-engines: unknown engine %q", name)
		}
		p.engines = append(p.engines, k)
	}
	for _, g := range strings.Split(*scen, ",") {
		g = strings.TrimSpace(g)
		if !slices.Contains(allGroups, g) {
			return params{}, fmt.Errorf("-scenarios: unknown scenario group %q (want some of %s)", g, strings.Join(allGroups, ", "))
		}
		p.groups[g] = true
	}
	switch {
	case p.runs < 1:
		return params{}, errors.New("-runs must be at least 1")
	case p.touchOps < 1:
		return params{}, errors.New("-touch-ops must be at least 1")
	case p.tick < time.Millisecond:
		return params{}, errors.New("-tick must be at least 1ms")
	case p.expiryIdle <= 0:
		return params{}, errors.New("-expiry-idle must be positive")
	case p.stackMiB < 0:
		return params{}, errors.New("-stack-budget must not be negative")
	case p.http.sessions < 1 || p.http.conns < 1 || p.http.duration <= 0:
		return params{}, errors.New("-http-sessions, -http-conns and -http-duration must be positive")
	case p.redis.sessions < 1 || p.redis.hot < 1 || p.redis.endings < 1 || p.redis.duration <= 0 || p.redis.latOps < 1:
		return params{}, errors.New("-redis-sessions, -redis-hot, -redis-endings, -redis-duration and -redis-latency-ops must be positive")
	}
	return p, nil
}

// parseSizes parses "100k,1M,10000000".
func parseSizes(s string) ([]int, error) {
	var sizes []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		mult := 1
		switch {
		case strings.HasSuffix(f, "k"):
			mult, f = 1_000, strings.TrimSuffix(f, "k")
		case strings.HasSuffix(f, "M"):
			mult, f = 1_000_000, strings.TrimSuffix(f, "M")
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 100_000_000/mult {
			return nil, fmt.Errorf("-sessions: bad size %q", f)
		}
		sizes = append(sizes, n*mult)
	}
	slices.Sort(sizes)
	return slices.Compact(sizes), nil
}

// estKey names a measured create time.
type estKey struct {
	engine string
	n      int
}

// bench is one run of the harness.
type bench struct {
	p          params
	epoch      time.Time // callbacks record times as durations since it (monotonic)
	res        report
	createTime map[estKey]time.Duration
	bar        *progressbar.ProgressBar
	stderr     io.Writer
	peaks      map[peakKey]peakSample
	memBudget  uint64 // bytes of goroutine stacks the expiry scenarios may reach
	quiet      bool   // a calibration runs: record nothing, do not move the bar
	// redisSkipped is set when the Redis group was asked for but no
	// redis-server was found: the run may then have no results at all.
	redisSkipped bool
}

// steps counts the progress bar's steps, as step is called.
func (p params) steps() int {
	n := 0
	perEngine := 0
	if p.groups[groupSteady] {
		perEngine += p.runs + 1 + len(touchVariants)
	}
	if p.groups[groupBurst] {
		perEngine += 2 * p.expiryRuns
	}
	if p.groups[groupLateness] {
		perEngine += p.expiryRuns
	}
	n += perEngine * len(p.engines) * len(p.sizes)
	if p.groups[groupHTTP] {
		n += len(httpVariants) + 1
	}
	if p.groups[groupRedis] {
		n += redisSteps
	}
	return n
}

func run(p params, stdout, stderr io.Writer) error {
	b := &bench{
		p:          p,
		epoch:      time.Now(),
		createTime: map[estKey]time.Duration{},
		stderr:     stderr,
		peaks:      map[peakKey]peakSample{},
		memBudget:  memAvailable() / 2,
		res:        report{machine: machineInfo(p), lateness: map[string]latenessCurve{}},
	}
	if p.stackMiB > 0 {
		b.memBudget = uint64(p.stackMiB) << 20
	}
	if p.cpuProfile != "" {
		f, err := os.Create(p.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	var floor []float64
	for range 5 {
		t0 := time.Now()
		runtime.GC()
		floor = append(floor, ms(time.Since(t0)))
	}
	b.res.machine.GCFloorMs = median(floor)
	window := 2 * time.Second
	if p.quick {
		window = 300 * time.Millisecond
	}
	gap, over := stalls(window)
	b.res.machine.StallMaxMs, b.res.machine.Stalls1ms, b.res.machine.StallWindow = ms(gap), over, window.String()
	b.bar = progressbar.NewOptions(p.steps(),
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetVisibility(p.progress),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionFullWidth(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(stderr) }),
	)
	// The steady-state scenarios run first, at every size. The expiry
	// scenarios leave behind the goroutines that stdtimer and the others
	// start per expiry (a million at 1M; the runtime keeps every goroutine
	// descriptor it ever made), and each later GC walks them all: measured
	// after them, every engine's forced GC at 10M gained some 200 ms.
	if p.groups[groupSteady] {
		for _, n := range p.sizes {
			ids, shuffled := make([]sessions.ID, n), make([]sessions.ID, n)
			for _, k := range p.engines {
				b.steady(k, n, ids, shuffled)
			}
			ids, shuffled = nil, nil
			release()
		}
	}
	if p.groups[groupBurst] || p.groups[groupLateness] {
		for _, n := range p.sizes {
			var ids []sessions.ID
			if p.groups[groupLateness] {
				ids = make([]sessions.ID, n)
			}
			for _, k := range p.engines {
				if p.groups[groupBurst] {
					b.burst(k, n)
					b.touchDuringBurst(k, n)
				}
				if p.groups[groupLateness] {
					b.lateness(k, n, ids)
				}
			}
			ids = nil
			release()
		}
	}
	if p.groups[groupHTTP] {
		if err := b.httpScenario(); err != nil {
			return err
		}
	}
	if p.groups[groupRedis] {
		if err := b.redisGroup(); err != nil {
			return err
		}
	}
	_ = b.bar.Finish()
	b.res.machine.Elapsed = time.Since(start).Round(time.Second).String()

	md := b.res.markdown(p)
	if p.out == "" {
		_, err := io.WriteString(stdout, md)
		return err
	}
	if err := os.MkdirAll(p.out, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(p.out, "results.md"), []byte(md), 0o644); err != nil {
		return err
	}
	js, err := b.res.json()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(p.out, "results.json"), js, 0o644); err != nil {
		return err
	}
	// Read it back, as a reader would: CI's smoke run relies on this check.
	var back jsonDoc
	if raw, err := os.ReadFile(filepath.Join(p.out, "results.json")); err != nil {
		return err
	} else if err := json.Unmarshal(raw, &back); err != nil {
		return fmt.Errorf("results.json does not parse: %w", err)
	} else if len(back.Results) == 0 && !b.redisSkipped {
		return errors.New("results.json has no results")
	}
	if err := b.res.plots(p.out); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bench: wrote %s (results.md, results.json, %s) in %s\n", p.out, strings.Join(plotFiles, ", "), b.res.machine.Elapsed)
	return nil
}

// step advances the progress bar and names the measurement that starts.
func (b *bench) step(engine string, n int, what string) {
	if b.quiet {
		b.bar.Describe(fmt.Sprintf("%-12s %9s  %s", engine, humanCount(n), "calibrating "+what))
		return
	}
	b.bar.Describe(fmt.Sprintf("%-12s %9s  %s", engine, humanCount(n), what))
	_ = b.bar.Add(1)
}

// add records one result.
func (b *bench) add(scenario, engine string, n int, metric string, v float64) {
	if b.quiet {
		return
	}
	b.res.results = append(b.res.results, result{Scenario: scenario, Engine: engine, Sessions: n, Metric: metric, Value: v})
}

// addMedian records the median of xs, if any run produced one (a run
// stopped early may not).
func (b *bench) addMedian(scenario, engine string, n int, metric string, xs []float64) {
	if len(xs) > 0 {
		b.add(scenario, engine, n, metric, median(xs))
	}
}

// note records something the reader must know about the run: it is printed
// in the report.
func (b *bench) note(format string, args ...any) {
	if b.quiet {
		return
	}
	b.res.notes = append(b.res.notes, fmt.Sprintf(format, args...))
}

// keepLateness keeps the lateness distribution of the largest size for the
// plot, at most 500 points of it.
func (b *bench) keepLateness(engine string, n int, sorted []float64) {
	if b.quiet {
		return
	}
	if c, ok := b.res.lateness[engine]; ok && c.n > n {
		return
	}
	const points = 500
	var c latenessCurve
	c.n = n
	for i := range points {
		q := float64(i+1) / points
		c.ms = append(c.ms, quantile(sorted, q))
		c.q = append(c.q, q)
	}
	b.res.lateness[engine] = c
}

func humanCount(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n >= 1_000 && n%1_000 == 0:
		return strconv.Itoa(n/1_000) + "k"
	}
	return strconv.Itoa(n)
}

// machineInfo describes the machine and the run for the report's header.
func machineInfo(p params) machine {
	return machine{
		CPU:        cpuModel(),
		Cores:      runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		Go:         runtime.Version(),
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
		Date:       time.Now().UTC().Format(time.RFC3339),
		Command:    p.command,
		Quick:      p.quick,
		Runs:       p.runs,
		ExpiryRuns: p.expiryRuns,
		TouchOps:   p.touchOps,
		Tick:       p.tick.String(),
		HugePages:  hugePages(),
	}
}

// hugePages describes whether sessionwheel puts its table on huge pages.
func hugePages() string {
	thp := "unknown"
	if b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled"); err == nil {
		thp = strings.TrimSpace(string(b))
	}
	if os.Getenv("SESSIONWHEEL_HUGEPAGES") == "off" {
		return "no (SESSIONWHEEL_HUGEPAGES=off); transparent huge pages: " + thp
	}
	return "yes where the OS allows (Linux, madvise); transparent huge pages: " + thp
}

// cpuModel reads the CPU's name from /proc/cpuinfo (Linux), or says what it
// knows.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH + " (model unknown)"
}

// memAvailable returns the memory available for new work (MemAvailable in
// /proc/meminfo on Linux), or 8 GiB if it cannot tell.
func memAvailable() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
				kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
				if err == nil {
					return kb << 10
				}
			}
		}
	}
	return 8 << 30
}

// stalls keeps every P busy for d with goroutines that only read the clock,
// and returns the longest gap one of them saw between two reads and how
// many gaps passed 1 ms. No lock and no memory is involved: the gaps are
// the time the machine took the CPU away (other threads, the hypervisor),
// a floor under every maximum latency the scenarios report.
func stalls(d time.Duration) (longest time.Duration, over1ms int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			var top time.Duration
			n := 0
			last := time.Now()
			for end := last.Add(d); last.Before(end); {
				now := time.Now()
				g := now.Sub(last)
				top = max(top, g)
				if g > time.Millisecond {
					n++
				}
				last = now
			}
			mu.Lock()
			longest, over1ms = max(longest, top), over1ms+n
			mu.Unlock()
		})
	}
	wg.Wait()
	return longest, over1ms
}
