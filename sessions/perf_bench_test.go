package sessions_test

import (
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/sessionwheel/sessionwheel/sessions"
)

// BenchmarkCreateLatency creates n sessions from empty on the system
// clock, one goroutine, timing each Create, and reports the time per
// create and the latency percentiles, while a second goroutine looks up
// random unknown IDs (each takes a shard's lock, as a touch does) and
// reports its longest lookup: how long a request waited for a shard that
// a create held, growth of the index and faults of fresh memory included
// (a rebuild of a whole shard's index at once held it for milliseconds at
// 10M sessions). A Create that faults fresh memory in before it takes its
// lock (hugemem.go) is slow itself but keeps no one waiting. A preemption
// or a GC pause shows in both: lookups>1ms counts the long ones. Run with
// -benchtime=1x or a few x, on a machine with a core for each goroutine.
func BenchmarkCreateLatency(b *testing.B) {
	for _, n := range sizes(b) {
		b.Run("live="+label(n), func(b *testing.B) {
			lat := make([]time.Duration, n)
			var all []time.Duration
			var lookMax time.Duration
			looksOver := 0
			for b.Loop() {
				m, err := sessions.New(sessions.Config{IdleTimeout: time.Hour, DiscardOnClose: true})
				if err != nil {
					b.Fatal(err)
				}
				stop, done := make(chan struct{}), make(chan struct{})
				go func() {
					defer close(done)
					r := rand.New(rand.NewPCG(5, 6))
					for {
						select {
						case <-stop:
							return
						default:
						}
						var id sessions.ID
						for i := range id {
							id[i] = byte(r.Uint32())
						}
						t0 := time.Now()
						m.Peek(id)
						d := time.Since(t0)
						lookMax = max(lookMax, d)
						if d > time.Millisecond {
							looksOver++
						}
					}
				}()
				for i := range lat {
					t0 := time.Now()
					if _, err := m.Create(); err != nil {
						b.Fatal(err)
					}
					lat[i] = time.Since(t0)
				}
				b.StopTimer()
				close(stop)
				<-done
				all = append(all, lat...)
				m.Close(context.Background())
				m = nil
				runtime.GC()
				b.StartTimer()
			}
			slices.Sort(all)
			q := func(p float64) float64 {
				return float64(all[min(len(all)-1, int(p*float64(len(all))))].Nanoseconds()) / 1000
			}
			over := len(all) - 1
			for over >= 0 && all[over] > time.Millisecond {
				over--
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/create")
			b.ReportMetric(q(0.999), "create-p99.9-µs")
			b.ReportMetric(float64(all[len(all)-1].Nanoseconds())/1000, "create-max-µs")
			b.ReportMetric(float64(len(all)-1-over), "creates>1ms")
			b.ReportMetric(float64(lookMax.Nanoseconds())/1000, "lookup-max-µs")
			b.ReportMetric(float64(looksOver), "lookups>1ms")
		})
	}
}

// BenchmarkTouchTailAlone is the control of BenchmarkTouchDuringMassEnding:
// the same toucher on the same table (n sessions, half of them survivors,
// touched in random order), timing 100,000 touches while nothing ends
// and no other goroutine of the process runs. The slow touches it sees
// are the machine's (interrupts, other processes, the hypervisor), which
// no change to the engine removes. Run with -benchtime=1x or a few x.
func BenchmarkTouchTailAlone(b *testing.B) {
	for _, n := range sizes(b) {
		b.Run("live="+label(n), func(b *testing.B) {
			var lat []time.Duration
			for b.Loop() {
				b.StopTimer()
				m, ids := fill(b, n, sessions.Config{IdleTimeout: time.Hour, DiscardOnClose: true})
				survivors := shuffled(ids[n/2:])
				runtime.GC()
				b.StartTimer()
				for i := range 100000 {
					t0 := time.Now()
					if !m.Touch(survivors[i%len(survivors)]) {
						b.Fatal("a survivor has ended")
					}
					lat = append(lat, time.Since(t0))
				}
				b.StopTimer()
				m.Close(context.Background())
				b.StartTimer()
			}
			slices.Sort(lat)
			q := func(p float64) float64 {
				return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Nanoseconds()) / 1000
			}
			slow := 0
			for _, d := range lat {
				if d > 20*time.Microsecond {
					slow++
				}
			}
			b.ReportMetric(q(0.5)*1000, "touch-p50-ns")
			b.ReportMetric(q(0.999), "touch-p99.9-µs")
			b.ReportMetric(float64(lat[len(lat)-1].Nanoseconds())/1000, "touch-max-µs")
			b.ReportMetric(float64(slow), "touches>20µs")
		})
	}
}
