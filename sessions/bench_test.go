package sessions_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionwheel/sessionwheel/sessions"
	"github.com/sessionwheel/sessionwheel/sessions/sessionstest"
)

// The sizes the large benchmarks use: go test -bench . -sizes 1000000,10000000
var sizesFlag = flag.String("sizes", "1000000", "comma-separated live-session counts for the large benchmarks")

func sizes(b *testing.B) []int {
	var out []int
	for f := range strings.SplitSeq(*sizesFlag, ",") {
		n, err := strconv.Atoi(f)
		if err != nil {
			b.Fatalf("-sizes: %v", err)
		}
		out = append(out, n)
	}
	return out
}

func label(n int) string {
	switch {
	case n%1000000 == 0:
		return fmt.Sprintf("%dM", n/1000000)
	case n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.Itoa(n)
}

// filled returns a manager on a fake clock holding n sessions, and their
// IDs in creation order.
func filled(b *testing.B, n int, cfg sessions.Config) (*sessions.Manager, *sessionstest.Clock, []sessions.ID) {
	b.Helper()
	clk := sessionstest.NewClock(time.Time{})
	cfg.Clock = clk
	m, ids := fill(b, n, cfg)
	return m, clk, ids
}

// fill returns a manager configured by cfg holding n sessions, and their
// IDs in creation order. With cfg.Clock nil it runs on the system clock:
// what the touch and create benchmarks measure is the real path, clock
// reads included.
func fill(b *testing.B, n int, cfg sessions.Config) (*sessions.Manager, []sessions.ID) {
	b.Helper()
	m, err := sessions.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]sessions.ID, n)
	for i := range ids {
		s, err := m.Create()
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = s.ID()
	}
	return m, ids
}

// timerEngine is the baseline the issue measures against: a map from ID to
// entry, sharded and locked like the manager's table, with one time.Timer
// per session, Reset on every touch.
type timerEngine struct {
	shards [64]struct {
		mu sync.Mutex
		m  map[sessions.ID]*time.Timer
	}
	idle time.Duration
}

func newTimerEngine(idle time.Duration) *timerEngine {
	e := &timerEngine{idle: idle}
	for i := range e.shards {
		e.shards[i].m = map[sessions.ID]*time.Timer{}
	}
	return e
}

func (e *timerEngine) create(id sessions.ID) {
	sh := &e.shards[id[15]&63]
	t := time.AfterFunc(e.idle, func() {
		sh.mu.Lock()
		delete(sh.m, id)
		sh.mu.Unlock()
	})
	sh.mu.Lock()
	sh.m[id] = t
	sh.mu.Unlock()
}

func (e *timerEngine) touch(id sessions.ID) bool {
	sh := &e.shards[id[15]&63]
	sh.mu.Lock()
	t := sh.m[id]
	sh.mu.Unlock()
	return t != nil && t.Reset(e.idle)
}

func shuffled(ids []sessions.ID) []sessions.ID {
	out := slices.Clone(ids)
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// BenchmarkTouch measures a touch by ID (Manager.Touch) with n sessions
// live, in creation order and in random order, against the time.Timer
// baseline in the same run.
func BenchmarkTouch(b *testing.B) {
	for _, n := range sizes(b) {
		m, ids := fill(b, n, sessions.Config{IdleTimeout: time.Hour}) // the system clock: nothing ends during the run
		random := shuffled(ids)
		for _, order := range []struct {
			name string
			ids  []sessions.ID
		}{{"sequential", ids}, {"random", random}} {
			b.Run(fmt.Sprintf("engine=sessionwheel/order=%s/live=%s", order.name, label(n)), func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if !m.Touch(order.ids[i]) {
						b.Fatal("session not found")
					}
					if i++; i == len(order.ids) {
						i = 0
					}
				}
			})
		}
		b.Run(fmt.Sprintf("engine=sessionwheel/order=random/goroutines=%d/live=%s", runtime.GOMAXPROCS(0), label(n)), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := rand.IntN(len(random))
				for pb.Next() {
					m.Touch(random[i])
					if i++; i == len(random) {
						i = 0
					}
				}
			})
		})
		m.Close(context.Background())
		m = nil
		runtime.GC()

		e := newTimerEngine(time.Hour)
		for _, id := range ids {
			e.create(id)
		}
		for _, order := range []struct {
			name string
			ids  []sessions.ID
		}{{"sequential", ids}, {"random", random}} {
			b.Run(fmt.Sprintf("engine=timer/order=%s/live=%s", order.name, label(n)), func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if !e.touch(order.ids[i]) {
						b.Fatal("timer not found")
					}
					if i++; i == len(order.ids) {
						i = 0
					}
				}
			})
		}
		for i := range e.shards {
			for _, t := range e.shards[i].m {
				t.Stop()
			}
		}
		runtime.GC()
	}
}

// BenchmarkCreate measures Create, random ID included, on a growing
// manager.
func BenchmarkCreate(b *testing.B) {
	b.ReportAllocs()
	m, err := sessions.New(sessions.Config{IdleTimeout: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close(context.Background())
	for b.Loop() {
		if _, err := m.Create(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateWarm measures Create into a manager whose table has held
// as many sessions before: slots come from the free list and the index
// does not grow, as in a server whose population is steady. (BenchmarkCreate
// includes the growth of every structure, and the page faults of memory the
// process touches for the first time.)
func BenchmarkCreateWarm(b *testing.B) {
	b.ReportAllocs()
	m, err := sessions.New(sessions.Config{IdleTimeout: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close(context.Background())
	const batch = 1 << 20
	ids := make([]sessions.ID, 0, batch)
	for b.Loop() {
		if len(ids) == batch {
			b.StopTimer()
			for _, id := range ids {
				m.Expire(id)
			}
			m.Sweep()
			ids = ids[:0]
			b.StartTimer()
		}
		s, err := m.Create()
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, s.ID())
	}
}

// BenchmarkCreateTo measures creating n sessions from empty, per session.
func BenchmarkCreateTo(b *testing.B) {
	for _, n := range sizes(b) {
		b.Run("live="+label(n), func(b *testing.B) {
			for b.Loop() {
				m, _, _ := filled(b, n, sessions.Config{DiscardOnClose: true})
				b.StopTimer()
				m.Close(context.Background())
				runtime.GC()
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/create")
		})
	}
}

// BenchmarkMemory reports the bytes per live session (index, arena and
// wheel; no values), on the heap and off it (huge pages: Stats.OffHeapBytes), and
// the time of a forced GC with them live. Run with -benchtime=1x.
func BenchmarkMemory(b *testing.B) {
	for _, n := range sizes(b) {
		b.Run("live="+label(n), func(b *testing.B) {
			for b.Loop() {
				var m *sessions.Manager
				reportMemory(b, n, func() *sessions.Manager {
					m, _, _ = filled(b, n, sessions.Config{DiscardOnClose: true}) // the IDs slice is garbage by the GC that follows
					return m
				})
				if m.Len() != n {
					b.Fatal("lost sessions")
				}
				m.Close(context.Background())
			}
		})
	}
}

// reportMemory reports the bytes per session that fill's manager of n
// sessions holds, on the heap and off it (Stats.OffHeapBytes), and the
// median of five forced GCs with them live; it returns the manager.
func reportMemory(b *testing.B, n int, fill func() *sessions.Manager) *sessions.Manager {
	var before, after runtime.MemStats
	runtime.GC()
	debug.FreeOSMemory()
	runtime.ReadMemStats(&before)
	m := fill()
	runtime.GC()
	runtime.ReadMemStats(&after)
	off := m.Stats().OffHeapBytes
	b.ReportMetric(float64(int64(after.HeapAlloc-before.HeapAlloc)+off)/float64(n), "B/session")
	b.ReportMetric(float64(off)/float64(n), "offheap-B/session")
	var gcs []time.Duration
	for range 5 {
		t0 := time.Now()
		runtime.GC()
		gcs = append(gcs, time.Since(t0))
	}
	slices.Sort(gcs)
	b.ReportMetric(float64(gcs[2].Microseconds())/1000, "ms/gc")
	return m
}

// BenchmarkExpire measures endings through the driver's sweep to no-op
// callbacks: n sessions due at the same tick, per ending.
func BenchmarkExpire(b *testing.B) {
	for _, n := range sizes(b) {
		b.Run("live="+label(n), func(b *testing.B) {
			var hold time.Duration
			for b.Loop() {
				b.StopTimer()
				m, clk, _ := filled(b, n, sessions.Config{IdleTimeout: time.Minute, OnExpire: func(sessions.Session, sessions.Reason) {}})
				runtime.GC()
				b.StartTimer()
				clk.Advance(2 * time.Minute)
				if got := m.Sweep() + int(m.Stats().Ended[sessions.Idle]); got < n {
					b.Fatalf("ended %d of %d", got, n)
				}
				b.StopTimer()
				hold = max(hold, m.Stats().MaxSweepHold)
				m.Close(context.Background())
				b.StartTimer()
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "endings/s")
			b.ReportMetric(float64(hold.Microseconds()), "µs-max-lock-hold")
		})
	}
}

// BenchmarkTouchDuringMassEnding measures what a toucher of surviving
// sessions sees while half of n sessions end at once: one goroutine
// touches the survivors in random order, timing each touch, while the
// sweep ends the other half (per iteration, with b.N sweeps of n/2). It
// reports the touch latency percentiles, the longest touch (an upper bound
// on the longest wait for a shard lock: an uncontended touch takes well
// under a microsecond), the sum of all waits for a sync.Mutex while the
// sessions end (which bounds the longest wait for a shard lock), the
// longest hold of a shard lock by the sweep, and the endings per second.
// The clock is frozen and moved by hand, read without a lock
// (sessionstest.Clock takes a mutex per read, which the toucher and the
// sweep would contend for); the sweep runs in m.Sweep.
// Run with -benchtime=1x or a few x.
func BenchmarkTouchDuringMassEnding(b *testing.B) {
	for _, n := range sizes(b) {
		b.Run("live="+label(n), func(b *testing.B) {
			var lat []time.Duration
			var hold, sweeping time.Duration
			ended := 0
			// All goroutines' waits for a sync.Mutex while the sessions
			// end: a bound on the longest wait of the toucher for a shard.
			waits := []metrics.Sample{{Name: "/sync/mutex/wait/total:seconds"}, {Name: "/sync/mutex/wait/total:seconds"}}
			lockWait := 0.0
			for b.Loop() {
				b.StopTimer()
				clk := &handClock{base: time.Now()}
				m, err := sessions.New(sessions.Config{IdleTimeout: time.Hour, Clock: clk})
				if err != nil {
					b.Fatal(err)
				}
				survivors := make([]sessions.ID, 0, n/2)
				for i := range n {
					s, err := m.Create()
					if err != nil {
						b.Fatal(err)
					}
					if i%2 == 0 {
						s.SetIdleTimeout(time.Minute)
					} else {
						survivors = append(survivors, s.ID())
					}
				}
				survivors = shuffled(survivors)
				if cap(lat) == 0 {
					lat = make([]time.Duration, 0, 1<<24)
				}
				runtime.GC()
				b.StartTimer()

				metrics.Read(waits[:1])
				clk.advance(2 * time.Minute)
				done := make(chan time.Duration)
				go func() {
					t0 := time.Now()
					m.Sweep()
					done <- time.Since(t0)
				}()
				for i := 0; ; i++ {
					select {
					case d := <-done:
						sweeping += d
						goto swept
					default:
					}
					if len(lat) == cap(lat) {
						lat = lat[:0] // keep a bounded sample: the latest
					}
					t0 := time.Now()
					if !m.Touch(survivors[i%len(survivors)]) {
						b.Fatal("a survivor has ended")
					}
					lat = append(lat, time.Since(t0))
				}
			swept:
				b.StopTimer()
				metrics.Read(waits[1:])
				lockWait += waits[1].Value.Float64() - waits[0].Value.Float64()
				st := m.Stats()
				ended += int(st.Ended[sessions.Idle])
				hold = max(hold, st.MaxSweepHold)
				m.Close(context.Background())
				b.StartTimer()
			}
			if ended < b.N*n/2 {
				b.Fatalf("ended %d of %d", ended, b.N*n/2)
			}
			slices.Sort(lat)
			q := func(p float64) float64 {
				return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Nanoseconds()) / 1000
			}
			b.ReportMetric(q(0.5)*1000, "touch-p50-ns")
			b.ReportMetric(q(0.999), "touch-p99.9-µs")
			b.ReportMetric(float64(lat[len(lat)-1].Nanoseconds())/1000, "touch-max-µs")
			b.ReportMetric(float64(len(lat)), "touches")
			slow := len(lat) - sort.Search(len(lat), func(i int) bool { return lat[i] > 20*time.Microsecond })
			b.ReportMetric(float64(slow), "touches>20µs")
			b.ReportMetric(float64(hold.Microseconds()), "µs-max-lock-hold")
			b.ReportMetric(lockWait*1e6/float64(b.N), "µs-all-lock-waits")
			b.ReportMetric(float64(ended)/sweeping.Seconds(), "endings/s")
		})
	}
}

// BenchmarkMemoryCallbacks reports the bytes per session and the forced GC
// time of the Twisted idiom, one NotifyOnExpire per session: with no
// callback, with one func value shared by all sessions, and with a distinct
// closure per session. Run with -benchtime=1x.
func BenchmarkMemoryCallbacks(b *testing.B) {
	for _, n := range sizes(b) {
		for _, kind := range []string{"none", "shared", "closure"} {
			b.Run("callback="+kind+"/live="+label(n), func(b *testing.B) {
				for b.Loop() {
					var ended int
					m := reportMemory(b, n, func() *sessions.Manager {
						m, err := sessions.New(sessions.Config{DiscardOnClose: true, Clock: sessionstest.NewClock(time.Time{})})
						if err != nil {
							b.Fatal(err)
						}
						shared := func(sessions.Session, sessions.Reason) { ended++ }
						for i := range n {
							s, err := m.Create()
							if err != nil {
								b.Fatal(err)
							}
							switch kind {
							case "shared":
								s.NotifyOnExpire(shared)
							case "closure":
								s.NotifyOnExpire(func(sessions.Session, sessions.Reason) { ended += i })
							}
						}
						return m
					})
					m.Close(context.Background())
				}
			})
		}
	}
}

// BenchmarkTouchFloor measures random-order touches as BenchmarkTouch
// does, in blocks of 10,000, and reports the fastest block and the median
// block, for sessionwheel and for the time.Timer baseline. On a shared
// machine the fastest block is the cost of a touch without other processes
// taking the core or the caches away; the median shows how much they do.
// b.N counts blocks: run with -benchtime 200x or so.
func BenchmarkTouchFloor(b *testing.B) {
	const block = 10000
	floor := func(b *testing.B, ids []sessions.ID, touch func(sessions.ID) bool) {
		var per []float64
		i := 0
		for b.Loop() {
			t0 := time.Now()
			for range block {
				if !touch(ids[i]) {
					b.Fatal("not found")
				}
				if i++; i == len(ids) {
					i = 0
				}
			}
			per = append(per, float64(time.Since(t0).Nanoseconds())/block)
		}
		slices.Sort(per)
		b.ReportMetric(per[0], "ns/touch-fastest-block")
		b.ReportMetric(per[len(per)/2], "ns/touch-median-block")
	}
	for _, n := range sizes(b) {
		m, ids := fill(b, n, sessions.Config{IdleTimeout: time.Hour})
		random := shuffled(ids)
		b.Run("engine=sessionwheel/live="+label(n), func(b *testing.B) { floor(b, random, m.Touch) })
		m.Close(context.Background())
		m = nil
		runtime.GC()
		e := newTimerEngine(time.Hour)
		for _, id := range ids {
			e.create(id)
		}
		b.Run("engine=timer/live="+label(n), func(b *testing.B) { floor(b, random, e.touch) })
		for i := range e.shards {
			for _, t := range e.shards[i].m {
				t.Stop()
			}
		}
		runtime.GC()
	}
}

// handClock is a clock that stands still until advance moves it, read
// with one atomic load. Its timers never fire: whoever moves it sweeps.
type handClock struct {
	base time.Time
	off  atomic.Int64
}

func (c *handClock) Now() time.Time                                 { return c.base.Add(time.Duration(c.off.Load())) }
func (c *handClock) advance(d time.Duration)                        { c.off.Add(int64(d)) }
func (c *handClock) AfterFunc(time.Duration, func()) sessions.Timer { return stopped{} }

type stopped struct{}

func (stopped) Stop() bool { return true }
