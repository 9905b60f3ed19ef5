package sessions_test

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionwheel/sessionwheel/sessions"
)

// The snapshot benchmarks: go test ./sessions -run '^$' -bench 'Snapshot|Restore' -benchtime 3x
// (-sizes as for the others). BenchmarkSnapshot reports the bytes a session
// takes in the snapshot and how long the snapshot held a shard's lock at a
// time; BenchmarkSnapshotTouchPause the waits of touches that run while
// snapshots are taken.

var snapshotKinds = []struct {
	name  string
	value string // set under "v" on every session, if not empty
}{
	{"bare", ""},
	{"value100", strings.Repeat("x", 100)},
}

// snapshotFilled returns a manager on the system clock holding n sessions,
// each with kind's value, and their IDs.
func snapshotFilled(b *testing.B, n int, value string) (*sessions.Manager, []sessions.ID) {
	b.Helper()
	m, ids := fill(b, n, sessions.Config{IdleTimeout: time.Hour, DiscardOnClose: true})
	if value != "" {
		for _, id := range ids {
			s, _ := m.Peek(id)
			if err := s.Set("v", value); err != nil {
				b.Fatal(err)
			}
		}
	}
	return m, ids
}

// reportHolds reports the median, 99th and 99.9th percentiles and the
// longest of the snapshots' lock holds.
func reportHolds(b *testing.B, holds []time.Duration) {
	if len(holds) == 0 {
		return
	}
	slices.Sort(holds)
	for _, q := range []struct {
		name string
		at   int
	}{{"p50", len(holds) / 2}, {"p99", len(holds) * 99 / 100}, {"p99.9", len(holds) * 999 / 1000}, {"max", len(holds) - 1}} {
		b.ReportMetric(float64(holds[q.at].Nanoseconds()), q.name+"-hold-ns")
	}
}

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

func BenchmarkSnapshot(b *testing.B) {
	for _, n := range sizes(b) {
		for _, k := range snapshotKinds {
			b.Run(label(n)+"/"+k.name, func(b *testing.B) {
				m, _ := snapshotFilled(b, n, k.value)
				defer m.Close(context.Background())
				var w countingWriter
				var holds []time.Duration
				for b.Loop() {
					w.n = 0
					if err := m.SnapshotHolds(&w, func(d time.Duration) { holds = append(holds, d) }); err != nil {
						b.Fatal(err)
					}
				}
				reportHolds(b, holds)
				b.ReportMetric(float64(w.n)/float64(n), "B/session")
				b.ReportMetric(float64(w.n), "B/snapshot")
			})
		}
	}
}

func BenchmarkRestore(b *testing.B) {
	for _, n := range sizes(b) {
		for _, k := range snapshotKinds {
			b.Run(label(n)+"/"+k.name, func(b *testing.B) {
				m, _ := snapshotFilled(b, n, k.value)
				var buf bytes.Buffer
				if err := m.Snapshot(&buf); err != nil {
					b.Fatal(err)
				}
				m.Close(context.Background())
				m = nil
				for b.Loop() {
					m2, err := sessions.New(sessions.Config{IdleTimeout: time.Hour, DiscardOnClose: true, Restore: bytes.NewReader(buf.Bytes())})
					if err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					if m2.Len() != n {
						b.Fatalf("%d sessions restored, want %d", m2.Len(), n)
					}
					m2.Close(context.Background())
					b.StartTimer()
				}
			})
		}
	}
}

// BenchmarkSnapshotTouchPause measures how long touches wait while
// snapshots run: one goroutine touches random sessions and times each
// touch, while the benchmark loop takes snapshots. It reports the 99.9th
// percentile and the longest touch seen during the snapshots (a GC pause
// counts too: a touch waits for it all the same, and so does the machine's
// scheduling), and the longest hold of a shard's lock by the snapshots, the
// part of a touch's wait that the snapshot decides.
func BenchmarkSnapshotTouchPause(b *testing.B) {
	for _, n := range sizes(b) {
		for _, k := range snapshotKinds {
			b.Run(label(n)+"/"+k.name, func(b *testing.B) {
				m, ids := snapshotFilled(b, n, k.value)
				defer m.Close(context.Background())
				order := shuffled(ids)
				stop := make(chan struct{})
				// Waits in 100 ns buckets up to 10 ms, and the longest:
				// recording allocates nothing, so the recorder adds no GC.
				var (
					wg      sync.WaitGroup
					buckets [100_000]uint32
					longest time.Duration
					count   int
				)
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						t0 := time.Now()
						m.Touch(order[i%len(order)])
						d := time.Since(t0)
						buckets[min(int(d/100), len(buckets)-1)]++
						longest = max(longest, d)
						count++
					}
				}()
				var hold time.Duration
				for b.Loop() {
					if err := m.SnapshotHolds(io.Discard, func(d time.Duration) { hold = max(hold, d) }); err != nil {
						b.Fatal(err)
					}
				}
				close(stop)
				wg.Wait()
				p999 := 0
				for seen := 0; p999 < len(buckets) && seen < count-count/1000; p999++ {
					seen += int(buckets[p999])
				}
				b.ReportMetric(float64(p999*100), "p99.9-touch-ns")
				b.ReportMetric(float64(longest.Nanoseconds()), "max-touch-ns")
				b.ReportMetric(float64(count), "touches")
				b.ReportMetric(float64(hold.Nanoseconds()), "max-hold-ns")
			})
		}
	}
}
