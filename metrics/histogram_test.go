package metrics

import (
	"math"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sessionwheel/sessionwheel/sessions"
)

// TestConstHistogram checks the conversion from the engine's per-bucket
// counts, with their overflow bucket, to Prometheus's cumulative ones.
func TestConstHistogram(t *testing.T) {
	desc := prometheus.NewDesc("h_seconds", "h", nil, nil)
	for _, tc := range []struct {
		name  string
		in    sessions.Histogram
		want  []uint64 // cumulative count at each bound
		count uint64
	}{{
		name: "empty",
		in:   sessions.Histogram{Bounds: []float64{0.5, 1, 5}, Counts: []uint64{0, 0, 0, 0}},
		want: []uint64{0, 0, 0},
	}, {
		// 2 at or below 0.5, none in (0.5, 1], 3 in (1, 5], 4 above 5.
		name:  "overflow",
		in:    sessions.Histogram{Bounds: []float64{0.5, 1, 5}, Counts: []uint64{2, 0, 3, 4}, Count: 9, Sum: 41.5},
		want:  []uint64{2, 2, 5},
		count: 9,
	}, {
		name:  "all in the first bucket",
		in:    sessions.Histogram{Bounds: []float64{0.5, 1, 5}, Counts: []uint64{7, 0, 0, 0}, Count: 7, Sum: 1},
		want:  []uint64{7, 7, 7},
		count: 7,
	}, {
		// The zero Histogram (no bounds) is an empty histogram, not a panic.
		name: "zero",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := constHistogram(desc, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			var out dto.Metric
			if err := m.Write(&out); err != nil {
				t.Fatal(err)
			}
			h := out.GetHistogram()
			if h.GetSampleCount() != tc.count || h.GetSampleSum() != tc.in.Sum {
				t.Errorf("count, sum = %d, %v; want %d, %v", h.GetSampleCount(), h.GetSampleSum(), tc.count, tc.in.Sum)
			}
			b := h.GetBucket()
			if len(b) != len(tc.want) {
				t.Fatalf("%d buckets, want %d", len(b), len(tc.want))
			}
			for i := range b {
				if b[i].GetUpperBound() != tc.in.Bounds[i] || b[i].GetCumulativeCount() != tc.want[i] {
					t.Errorf("bucket %d: le=%v count %d; want le=%v count %d",
						i, b[i].GetUpperBound(), b[i].GetCumulativeCount(), tc.in.Bounds[i], tc.want[i])
				}
			}
		})
	}
}

// TestConstHistogramEngineBounds converts a histogram over each of the
// engine's bounds, one observation per bucket and one above the last, and
// checks that bucket i holds i+1 and +Inf all of them.
func TestConstHistogramEngineBounds(t *testing.T) {
	desc := prometheus.NewDesc("h_seconds", "h", nil, nil)
	for _, bounds := range [][]float64{sessions.LatenessBounds(), sessions.LifetimeBounds(), sessions.CallbackDurationBounds()} {
		in := sessions.Histogram{Bounds: bounds, Counts: make([]uint64, len(bounds)+1)}
		for i := range in.Counts {
			in.Counts[i] = 1
		}
		in.Count = uint64(len(in.Counts))
		m, err := constHistogram(desc, in)
		if err != nil {
			t.Fatal(err)
		}
		var out dto.Metric
		if err := m.Write(&out); err != nil {
			t.Fatal(err)
		}
		h := out.GetHistogram()
		if h.GetSampleCount() != in.Count {
			t.Errorf("%v: count %d, want %d", bounds, h.GetSampleCount(), in.Count)
		}
		prev := 0.0
		for i, b := range h.GetBucket() {
			if b.GetUpperBound() <= prev || math.IsInf(b.GetUpperBound(), 0) {
				t.Errorf("%v: bound %d is %v after %v", bounds, i, b.GetUpperBound(), prev)
			}
			prev = b.GetUpperBound()
			if b.GetCumulativeCount() != uint64(i+1) {
				t.Errorf("%v: bucket le=%v holds %d, want %d", bounds, b.GetUpperBound(), b.GetCumulativeCount(), i+1)
			}
		}
	}
}
