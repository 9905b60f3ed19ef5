package metrics_test

import (
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessionwheel/sessionwheel/metrics"
	"github.com/sessionwheel/sessionwheel/sessions"
)

const benchSessions = 100_000

// BenchmarkTouch measures Manager.Touch on a manager holding 100k sessions
// with no collector, with a registered collector, and with a collector being
// scraped in a loop by another goroutine, one after the other on the same
// manager, so that the three are comparable. The first two should not
// differ: the collector costs the touch path nothing. The third shows what
// continuous scraping costs touches (Stats takes each shard's lock briefly);
// real scrapes come every few seconds, not back to back.
func BenchmarkTouch(b *testing.B) {
	m := newManager(b, sessions.Config{})
	ids := make([]sessions.ID, benchSessions)
	for i, s := range create(b, m, benchSessions) {
		ids[i] = s.ID()
	}
	touch := func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			m.Touch(ids[i])
			if i++; i == len(ids) {
				i = 0
			}
		}
	}

	b.Run("bare", touch)

	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.New(m, prometheus.Labels{"manager": "bench"}))
	if _, err := reg.Gather(); err != nil {
		b.Fatal(err)
	}
	b.Run("collector-registered", touch)

	b.Run("while-scraping", func(b *testing.B) {
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := reg.Gather(); err != nil {
					b.Error(err)
					return
				}
			}
		})
		touch(b)
		close(done)
		wg.Wait()
	})
}

// BenchmarkGather measures one scrape of a manager holding 100k sessions
// with the default 64 shards: the whole cost of the metrics, paid by the
// scraper.
func BenchmarkGather(b *testing.B) {
	m := newManager(b, sessions.Config{})
	create(b, m, benchSessions)
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.New(m, nil))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}
