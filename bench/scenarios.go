package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessionwheel/sessionwheel/sessions"
)

// Scenario groups, as the -scenarios flag names them.
const (
	groupSteady   = "steady"          // create, memory, gc, touch-*
	groupBurst    = "expiry-burst"    // N sessions due at the same instant
	groupLateness = "expiry-lateness" // N sessions due as they were created
	groupHTTP     = "http"            // HTTP over loopback, and the handler chain in process
	groupRedis    = "redis"           // redisstore against scs's redisstore, on one redis-server
)

var allGroups = []string{groupSteady, groupBurst, groupLateness, groupHTTP, groupRedis}

// Scenario and metric names, as results.json spells them.
const (
	scCreate         = "create"
	scMemory         = "memory"
	scGC             = "gc"
	scTouchSeq       = "touch-seq"
	scTouchRandom    = "touch-random"
	scTouchSeqPar    = "touch-seq-parallel"
	scTouchRandomPar = "touch-random-parallel"
	scBurst          = "expiry-burst"
	scTouchBurst     = "touch-during-burst"
	scMemShared      = "memory-callback-shared"
	scMemClosure     = "memory-callback-closure"
	scLateness       = "expiry-lateness"
	scHTTP           = "http"
	scHTTPInproc     = "http-inproc"

	mNsOp       = "ns/op"
	mAllocsOp   = "allocs/op"
	mBytes      = "bytes/session"
	mMs         = "ms"
	mRate       = "expiries/s"
	mDrainMs    = "drain-ms"
	mFirstMs    = "first-ms"
	mPace       = "due-per-s"
	mGoroutines = "peak-goroutines"
	mStackMiB   = "peak-stack-MiB"
	mP50Ms      = "p50-ms"
	mP99Ms      = "p99-ms"
	mMaxMs      = "max-ms"
	mMinMs      = "min-ms"
	mReqs       = "req/s"
	mP50Us      = "p50-us"
	mP99Us      = "p99-us"
	mAllocsReq  = "allocs/req"
	mMissedReqs = "misses"
	mP999Us     = "p99.9-us"
	mMaxUs      = "max-us"
	mHoldUs     = "max-lock-hold-us"
)

// touchVariants are the touch scenarios: access order and goroutines (0
// means GOMAXPROCS).
var touchVariants = []struct {
	scenario string
	random   bool
	parallel bool
}{
	{scTouchSeq, false, false},
	{scTouchRandom, true, false},
	{scTouchSeqPar, false, true},
	{scTouchRandomPar, true, true},
}

// release returns what the previous measurement left to the operating
// system, so that each one starts from the same state.
func release() {
	runtime.GC()
	debug.FreeOSMemory()
}

// memStats returns the live heap after a full collection, and the count of
// allocations so far.
func memStats() (heap uint64, mallocs uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, ms.Mallocs
}

func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// quantile returns the q-quantile of sorted xs (nearest rank).
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func roundUp(d, to time.Duration) time.Duration { return (d + to - 1) / to * to }

// build makes an engine or stops the run.
func (b *bench) build(k engineKind, cfg engineConfig) engine {
	e, err := k.build(cfg)
	if err != nil {
		panic(fmt.Sprintf("%s: %v", k.name, err))
	}
	return e
}

// steadyConfig is the configuration of the steady-state scenarios: nothing
// expires while they run.
func (b *bench) steadyConfig() engineConfig {
	return engineConfig{idle: b.p.steadyIdle, tick: sessions.DefaultTick}
}

// warmUp runs a small create-and-touch pass so that code and the allocator
// are warm before the first measurement of an engine.
func (b *bench) warmUp(k engineKind, n int) {
	e := b.build(k, b.steadyConfig())
	ids := make([]sessions.ID, min(b.p.warmUp, n))
	for i := range ids {
		ids[i] = e.create()
	}
	for range 2 {
		for _, id := range ids {
			e.touch(id)
		}
	}
	e.close()
}

// steady measures create, bytes per session, forced GC and touches with n
// live sessions. Each run creates n sessions in a fresh engine; the last
// run's engine then serves the GC and touch measurements.
func (b *bench) steady(k engineKind, n int, ids, shuffled []sessions.ID) {
	b.warmUp(k, n)
	var createNs, createAllocs, bytesPer []float64
	var e engine
	for r := range b.p.runs {
		b.step(k.name, n, fmt.Sprintf("create run %d/%d", r+1, b.p.runs))
		release()
		eng := b.build(k, b.steadyConfig())
		before, m0 := memStats()
		t0 := time.Now()
		for i := range ids {
			ids[i] = eng.create()
		}
		dt := time.Since(t0)
		m1 := mallocs()
		after, _ := memStats()
		// sessionwheel keeps its table off the heap, on huge pages.
		after += uint64(offHeap(eng))
		createNs = append(createNs, float64(dt)/float64(n))
		createAllocs = append(createAllocs, float64(m1-m0)/float64(n))
		bytesPer = append(bytesPer, (float64(after)-float64(before))/float64(n))
		if r < b.p.runs-1 {
			eng.close()
			continue
		}
		e = eng
	}
	b.add(scCreate, k.name, n, mNsOp, median(createNs))
	b.add(scCreate, k.name, n, mAllocsOp, median(createAllocs))
	b.add(scMemory, k.name, n, mBytes, median(bytesPer))
	if k.name == us {
		b.callbackMemory(n)
	}
	b.createTime[estKey{k.name, n}] = time.Duration(median(createNs) * float64(n))

	b.step(k.name, n, "forced GC")
	var gcs []float64
	for range max(3, b.p.runs) {
		t0 := time.Now()
		runtime.GC()
		gcs = append(gcs, ms(time.Since(t0)))
	}
	b.add(scGC, k.name, n, mMs, median(gcs))

	copy(shuffled, ids)
	rng := rand.New(rand.NewPCG(b.p.seed, uint64(n)))
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, v := range touchVariants {
		b.step(k.name, n, v.scenario)
		order := ids
		if v.random {
			order = shuffled
		}
		par := 1
		if v.parallel {
			par = runtime.GOMAXPROCS(0)
		}
		pos := 0
		b.touchRun(e, order, max(b.p.touchOps/4, 1), par, &pos) // warm-up
		var nsOp, allocs []float64
		misses := 0
		for range b.p.runs {
			ns, a, miss := b.touchRun(e, order, b.p.touchOps, par, &pos)
			nsOp = append(nsOp, ns)
			allocs = append(allocs, a)
			misses += miss
		}
		if misses > 0 {
			b.note("%s %s at %d: %d touches found no session (they must all be live)", k.name, v.scenario, n, misses)
		}
		b.add(v.scenario, k.name, n, mNsOp, median(nsOp))
		b.add(v.scenario, k.name, n, mAllocsOp, median(allocs))
	}
	e.close()
	release()
}

// touchRun touches ops sessions of order, starting at *pos and wrapping
// around, split among par goroutines that each take a contiguous part. It
// returns the wall time per touch, the allocations per touch and the
// number of touches that found no session.
func (b *bench) touchRun(e engine, order []sessions.ID, ops, par int, pos *int) (nsOp, allocsOp float64, misses int) {
	n := len(order)
	per := ops / par
	var missed atomic.Int64
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for g := range par {
		start := (*pos + g*(n/par)) % n
		wg.Go(func() {
			<-gate
			miss := 0
			for done, i := 0, start; done < per; {
				chunk := order[i:min(n, i+per-done)]
				for _, id := range chunk {
					if !e.touch(id) {
						miss++
					}
				}
				done += len(chunk)
				if i += len(chunk); i == n {
					i = 0
				}
			}
			missed.Add(int64(miss))
		})
	}
	m0 := mallocs()
	t0 := time.Now()
	close(gate)
	wg.Wait()
	dt := time.Since(t0)
	m1 := mallocs()
	*pos = (*pos + per) % n
	total := per * par
	return float64(dt) / float64(total), float64(m1-m0) / float64(total), int(missed.Load())
}

// estimate returns how long creating n sessions takes engine k, as the
// create scenario measured it, or a generous guess.
func (b *bench) estimate(k engineKind, n int) time.Duration {
	if d, ok := b.createTime[estKey{k.name, n}]; ok {
		return d
	}
	return time.Duration(n) * 3 * time.Microsecond
}

// burst measures expiry throughput: n sessions all due at the same instant,
// with callbacks that only count. The engines that take a clock create them
// while the clock is frozen (in the middle of a tick), then the clock runs;
// the others create each with the time left until a common deadline set far
// enough ahead. Throughput is n over the time from that deadline to the last
// callback.
func (b *bench) burst(k engineKind, n int) {
	if b.tooBig(k, scBurst, n) {
		b.skip(b.p.expiryRuns)
		return
	}
	idle := roundUp(b.p.expiryIdle, b.p.tick)
	var rates, drains, firsts, goroutines, stacks []float64
	for r := range b.p.expiryRuns {
		b.step(k.name, n, fmt.Sprintf("expiry-burst run %d/%d", r+1, b.p.expiryRuns))
		release()
		var fired, first, last atomic.Int64
		done := make(chan struct{})
		cfg := engineConfig{idle: idle, tick: b.p.tick, onExpire: func(sessions.ID) {
			switch fired.Add(1) {
			case 1:
				first.Store(int64(time.Since(b.epoch)))
				if n > 1 {
					break
				}
				fallthrough
			case int64(n):
				last.Store(int64(time.Since(b.epoch)))
				close(done)
			}
		}}
		w := b.watch(k.name, scBurst, n)
		var e engine
		var due time.Time
		if k.clocked {
			clk := newFrozenClock()
			cfg.clock = clk
			e = b.build(k, cfg)
			clk.advance(b.p.tick / 2) // sessions start mid-tick, as on average
			for range n {
				e.create()
			}
			due = clk.thaw().Add(idle)
		} else {
			est := b.estimate(k, n)
			due = time.Now().Add(est*3/2 + idle)
			e = b.build(k, cfg)
			dc := e.(dueCreator)
			for range n {
				dc.createDue(due)
			}
			if late := time.Since(due); late > -idle/2 {
				b.note("%s expiry-burst at %d: creating took until %v before the deadline (less than half the idle timeout): the drain overlapped creation", k.name, n, -late)
			}
		}
		limit := time.Until(due) + 30*time.Second + time.Duration(n)*20*time.Microsecond
		select {
		case <-done:
			// An engine that ends sessions early (timingwheel rounds
			// deadlines down to its tick) starts draining before the
			// deadline: the drain is counted from its first callback then.
			dueAt := due.Sub(b.epoch)
			start := min(dueAt, time.Duration(first.Load()))
			drain := time.Duration(last.Load()) - start
			drains = append(drains, ms(drain))
			firsts = append(firsts, ms(time.Duration(first.Load())-dueAt))
			rates = append(rates, float64(n)/max(drain.Seconds(), 1e-9))
		case <-w.over:
			b.note("%s expiry-burst at %d stopped after %d of %d callbacks: %s", k.name, n, fired.Load(), n, b.overText())
		case <-time.After(limit):
			b.note("%s expiry-burst at %d: only %d of %d callbacks within %v of the deadline", k.name, n, fired.Load(), n, limit-time.Until(due))
		}
		e.close()
		peakG, peakStack := w.stop()
		goroutines = append(goroutines, float64(peakG))
		stacks = append(stacks, float64(peakStack)/(1<<20))
	}
	if len(rates) > 0 {
		b.add(scBurst, k.name, n, mRate, median(rates))
		b.add(scBurst, k.name, n, mDrainMs, median(drains))
		b.add(scBurst, k.name, n, mFirstMs, median(firsts))
	}
	b.add(scBurst, k.name, n, mGoroutines, median(goroutines))
	b.add(scBurst, k.name, n, mStackMiB, median(stacks))
	release()
}

// callbackMemory measures sessionwheel's bytes per session and forced GC
// with one NotifyOnExpire per session (Twisted's idiom): one func value
// shared by every session, and a distinct closure per session. (The timer
// baselines have a func per session by construction: their memory row
// already includes it.)
func (b *bench) callbackMemory(n int) {
	for _, sc := range []string{scMemShared, scMemClosure} {
		release()
		before, _ := memStats()
		m, err := sessions.New(sessions.Config{IdleTimeout: b.p.steadyIdle, DiscardOnClose: true})
		if err != nil {
			panic(err)
		}
		var calls atomic.Int64
		shared := func(sessions.Session, sessions.Reason) { calls.Add(1) }
		for i := range n {
			s, err := m.Create()
			if err != nil {
				panic(err)
			}
			if sc == scMemShared {
				s.NotifyOnExpire(shared)
			} else {
				s.NotifyOnExpire(func(sessions.Session, sessions.Reason) { calls.Add(int64(i)) })
			}
		}
		after, _ := memStats()
		after += uint64(m.Stats().OffHeapBytes)
		b.add(sc, us, n, mBytes, (float64(after)-float64(before))/float64(n))
		var gcs []float64
		for range 3 {
			t0 := time.Now()
			runtime.GC()
			gcs = append(gcs, ms(time.Since(t0)))
		}
		b.add(sc, us, n, mMs, median(gcs))
		_ = m.Close(context.Background())
	}
}

// touchDuringBurst measures what a toucher sees while half of n sessions
// end at once: n/2 sessions are created on a frozen clock, the clock moves
// on by half the idle timeout, n/2 survivors are created, and the clock
// runs; one goroutine touches the survivors in random order, timing each
// touch, from the moment the first half comes due until its last callback.
// Reported: the touch latency p50, p99.9 and max (the longest touch bounds
// the longest wait for a lock that a toucher sees: an uncontended touch
// takes well under a microsecond), and for sessionwheel the longest hold
// of a shard lock by its driver. Only the engines that take a clock run
// it (the others cannot start half the sessions at one instant and the
// rest later without a clock).
func (b *bench) touchDuringBurst(k engineKind, n int) {
	if !k.clocked || b.tooBig(k, scBurst, n) {
		b.skip(b.p.expiryRuns)
		return
	}
	// The survivors must outlive the burst, however long it takes to drain
	// (about a second per 3M endings), so that only the first half ends
	// while the touches are timed: an idle timeout of at least 2 µs per
	// session, and the survivors are created lead before the first half
	// comes due.
	idle := roundUp(max(b.p.expiryIdle, 2*b.p.tick, time.Duration(n)*2*time.Microsecond), b.p.tick)
	lead := roundUp(min(idle/2, 500*time.Millisecond), b.p.tick)
	var p50s, p999s, maxs, holds, rates []float64
	for r := range b.p.expiryRuns {
		b.step(k.name, n, fmt.Sprintf("touch-during-burst run %d/%d", r+1, b.p.expiryRuns))
		release()
		var fired atomic.Int64
		done := make(chan struct{})
		half := n / 2
		clk := newFrozenClock()
		e := b.build(k, engineConfig{idle: idle, tick: b.p.tick, clock: clk, onExpire: func(sessions.ID) {
			if fired.Add(1) == int64(half) {
				close(done)
			}
		}})
		clk.advance(b.p.tick / 2)
		for range half {
			e.create()
		}
		clk.advance(idle - lead)
		survivors := make([]sessions.ID, n-half)
		for i := range survivors {
			survivors[i] = e.create()
		}
		rng := rand.New(rand.NewPCG(b.p.seed, uint64(n)))
		rng.Shuffle(len(survivors), func(i, j int) { survivors[i], survivors[j] = survivors[j], survivors[i] })
		lat := make([]float64, 0, 1<<20)
		misses := 0
		due := clk.thaw().Add(lead)
		limit := time.After(time.Until(due) + 30*time.Second + time.Duration(n)*20*time.Microsecond)
		for i := 0; ; i++ {
			if i&63 == 0 {
				select {
				case <-done:
					rates = append(rates, float64(half)/time.Since(due).Seconds())
					goto drained
				case <-limit:
					b.note("%s touch-during-burst at %d: only %d of %d callbacks in time", k.name, n, fired.Load(), half)
					goto drained
				default:
				}
			}
			t0 := time.Now()
			if !e.touch(survivors[i%len(survivors)]) {
				misses++
			}
			if d := time.Since(t0); !t0.Before(due) {
				lat = append(lat, float64(d)/1e3)
			}
		}
	drained:
		if misses > 0 {
			// Not an early ending: when one pass over the survivors takes
			// longer than their idle timeout (at 10M), those not touched in
			// time end as they should.
			b.note("%s touch-during-burst at %d: %d touches found a survivor ended (touched less often than its idle timeout: a pass over the survivors is longer)", k.name, n, misses)
		}
		if sw, ok := e.(*swEngine); ok {
			holds = append(holds, float64(sw.m.Stats().MaxSweepHold)/1e3)
		}
		e.close()
		if len(lat) > 0 {
			slices.Sort(lat)
			p50s = append(p50s, quantile(lat, 0.5))
			p999s = append(p999s, quantile(lat, 0.999))
			maxs = append(maxs, lat[len(lat)-1])
		}
	}
	if len(p50s) > 0 {
		b.add(scTouchBurst, k.name, n, mP50Us, median(p50s))
		b.add(scTouchBurst, k.name, n, mP999Us, median(p999s))
		b.add(scTouchBurst, k.name, n, mMaxUs, median(maxs))
	}
	b.addMedian(scTouchBurst, k.name, n, mHoldUs, holds)
	b.addMedian(scTouchBurst, k.name, n, mRate, rates)
	release()
}

// lateness measures how late each session ends after its deadline: n
// sessions created as fast as the engine allows, on the real clock, with an
// idle timeout longer than their creation takes, so that they come due at
// the pace at which they were created and no creation competes with the
// expiries. Each session's deadline is its creation time plus the idle
// timeout; its lateness is the time of its callback minus its deadline.
func (b *bench) lateness(k engineKind, n int, ids []sessions.ID) {
	if b.tooBig(k, scLateness, n) {
		b.skip(b.p.expiryRuns)
		return
	}
	est := b.estimate(k, n)
	idle := roundUp(est*5/4+b.p.expiryIdle, b.p.tick)
	created := make([]int64, n)
	firedID := make([]sessions.ID, n)
	firedAt := make([]int64, n)
	var p50s, p99s, maxs, mins, paces, goroutines, stacks []float64
	var sorted []float64
	for r := range b.p.expiryRuns {
		b.step(k.name, n, fmt.Sprintf("expiry-lateness run %d/%d", r+1, b.p.expiryRuns))
		release()
		var cursor, written atomic.Int64
		done := make(chan struct{})
		cfg := engineConfig{idle: idle, tick: b.p.tick, onExpire: func(id sessions.ID) {
			i := cursor.Add(1) - 1
			if i >= int64(n) {
				return
			}
			firedID[i] = id
			firedAt[i] = int64(time.Since(b.epoch))
			if written.Add(1) == int64(n) {
				close(done)
			}
		}}
		w := b.watch(k.name, scLateness, n)
		e := b.build(k, cfg)
		for i := range ids {
			created[i] = int64(time.Since(b.epoch))
			ids[i] = e.create()
		}
		paces = append(paces, float64(n)/(time.Duration(int64(time.Since(b.epoch))-created[0]).Seconds()))
		limit := idle + 2*est + 30*time.Second
		ok := true
		select {
		case <-done:
		case <-w.over:
			ok = false
			b.note("%s expiry-lateness at %d stopped after %d of %d callbacks: %s", k.name, n, written.Load(), n, b.overText())
		case <-time.After(limit):
			ok = false
			b.note("%s expiry-lateness at %d: only %d of %d callbacks within %v", k.name, n, written.Load(), n, limit)
		}
		e.close()
		peakG, peakStack := w.stop()
		goroutines = append(goroutines, float64(peakG))
		stacks = append(stacks, float64(peakStack)/(1<<20))
		if !ok {
			continue
		}
		if extra := cursor.Load() - int64(n); extra > 0 {
			b.note("%s expiry-lateness at %d: %d callbacks more than sessions", k.name, n, extra)
		}
		at := make(map[sessions.ID]int64, n)
		for i, id := range ids {
			at[id] = created[i]
		}
		lat := make([]float64, 0, n)
		for i, id := range firedID {
			c, ok := at[id]
			if !ok {
				b.note("%s expiry-lateness at %d: a callback for an unknown session", k.name, n)
				continue
			}
			lat = append(lat, ms(time.Duration(firedAt[i]-c)-idle))
		}
		at = nil
		slices.Sort(lat)
		if early, _ := slices.BinarySearch(lat, 0); early > 0 {
			b.note("%s expiry-lateness at %d (run %d): %d sessions (%.2g%%) ended before their creation time + idle timeout, the earliest by %.3g ms",
				k.name, n, r+1, early, 100*float64(early)/float64(len(lat)), -lat[0])
		}
		p50s = append(p50s, quantile(lat, 0.5))
		p99s = append(p99s, quantile(lat, 0.99))
		maxs = append(maxs, lat[len(lat)-1])
		mins = append(mins, lat[0])
		sorted = lat
	}
	if len(p50s) > 0 {
		b.add(scLateness, k.name, n, mP50Ms, median(p50s))
		b.add(scLateness, k.name, n, mP99Ms, median(p99s))
		b.add(scLateness, k.name, n, mMaxMs, median(maxs))
		b.add(scLateness, k.name, n, mMinMs, median(mins))
		b.add(scLateness, k.name, n, mPace, median(paces))
		b.keepLateness(k.name, n, sorted)
	}
	b.add(scLateness, k.name, n, mGoroutines, median(goroutines))
	b.add(scLateness, k.name, n, mStackMiB, median(stacks))
	release()
}

// A watcher samples the number of goroutines and the memory of their
// stacks every millisecond while an expiry scenario runs. The baselines
// start a goroutine per expiry, and stdtimer starts them faster than they
// finish, so its stacks grow with the number of sessions due at once. If
// they pass the memory budget, over is closed: the scenario then closes the
// engine (which stops its timers) rather than push a shared machine out of
// memory.
type watcher struct {
	quit chan struct{}
	out  chan [2]uint64
	over chan struct{}
	b    *bench
	key  peakKey
	n    int
}

func (b *bench) watch(engine, scenario string, n int) *watcher {
	w := &watcher{quit: make(chan struct{}), out: make(chan [2]uint64), over: make(chan struct{}), b: b, key: peakKey{engine, scenario}, n: n}
	go func() {
		samples := []metrics.Sample{{Name: "/sched/goroutines:goroutines"}, {Name: "/memory/classes/heap/stacks:bytes"}}
		var peak [2]uint64
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		over := false
		for {
			metrics.Read(samples)
			peak[0] = max(peak[0], samples[0].Value.Uint64())
			peak[1] = max(peak[1], samples[1].Value.Uint64())
			// Stopping the engine takes a while, during which it goes on
			// starting goroutines: stop at three quarters of the budget.
			if !over && peak[1] > b.memBudget/4*3 {
				over = true
				close(w.over)
			}
			select {
			case <-w.quit:
				w.out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// stop stops the sampling and returns the peaks.
func (w *watcher) stop() (goroutines, stackBytes uint64) {
	close(w.quit)
	p := <-w.out
	if old, ok := w.b.peaks[w.key]; !ok || old.n < w.n || old.stack < p[1] {
		w.b.peaks[w.key] = peakSample{w.n, p[1]}
	}
	return p[0], p[1]
}

func (b *bench) overText() string {
	return fmt.Sprintf("goroutine stacks passed three quarters of this run's budget of %s (-stack-budget), and the engine was closed; it starts a goroutine per expiry", b.budgetText())
}

func (b *bench) budgetText() string {
	if b.memBudget < 1<<30 {
		return fmt.Sprintf("%d MiB", b.memBudget>>20)
	}
	return fmt.Sprintf("%.1f GiB", float64(b.memBudget)/(1<<30))
}

// peakKey and peakSample remember the largest goroutine stacks an engine's
// expiry scenario needed, to predict the next size's.
type peakKey struct{ engine, scenario string }

type peakSample struct {
	n     int
	stack uint64
}

// calibrationSize is the size at which an expiry scenario is tried first,
// unreported, when a run starts above it with no smaller size measured.
const calibrationSize = 100_000

// tooBig reports whether an expiry scenario at n sessions would need more
// memory for goroutine stacks than the budget, extrapolating linearly from
// a smaller size (measured first if need be), and notes it if so.
func (b *bench) tooBig(k engineKind, scenario string, n int) bool {
	key := peakKey{k.name, scenario}
	p, ok := b.peaks[key]
	if !ok && n > calibrationSize && !b.quiet {
		b.calibrate(k, scenario)
		p, ok = b.peaks[key]
	}
	if !ok || p.n >= n {
		return false
	}
	// Each goroutine also has a g (about 0.4 KiB) beside its 2 KiB stack;
	// and the measured peak varies from run to run.
	need := float64(p.stack) * float64(n) / float64(p.n) * 1.3
	if need <= 0.8*float64(b.memBudget) {
		return false
	}
	b.note("%s %s at %d skipped: it would start about %s goroutines at once (one per expiry; %d MiB of stacks at %d sessions), about %.1f GiB with their g structs, beyond 80%% of this run's budget of %s (-stack-budget)",
		k.name, scenario, n, groupDigits(int(float64(n)*float64(p.stack)/float64(p.n)/2048)), p.stack>>20, p.n, need/(1<<30), b.budgetText())
	return true
}

// calibrate runs an expiry scenario once at calibrationSize without
// reporting it, to learn how many goroutines it needs.
func (b *bench) calibrate(k engineKind, scenario string) {
	runs := b.p.expiryRuns
	b.quiet, b.p.expiryRuns = true, 1
	defer func() { b.quiet, b.p.expiryRuns = false, runs }()
	switch scenario {
	case scBurst:
		b.burst(k, calibrationSize)
	case scLateness:
		b.lateness(k, calibrationSize, make([]sessions.ID, calibrationSize))
	}
}

// skip advances the progress bar over runs that do not happen.
func (b *bench) skip(steps int) { _ = b.bar.Add(steps) }
