package redisstore

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/sessionwheel/sessionwheel/redisstore/redistest"
	"github.com/sessionwheel/sessionwheel/sessions"
)

// Speed is measured here, never asserted; the comparison with scs's
// redisstore lives in the bench module.

func BenchmarkCreate(b *testing.B) {
	r := redistest.Server(b, "--hash-max-listpack-value", "128")
	st := open(b, client(b, r.Addr), Options{}, sessions.StoreConfig{IdleTimeout: time.Hour, Tick: time.Second})
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := st.Create(bg, newID(b)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// Lookups with touch of 10k hot sessions by 64 callers, a 1 s slack: the
// writes per touch are reported; with and without ClientCache.
func BenchmarkLookupTouch(b *testing.B) {
	for _, cache := range []time.Duration{0, time.Minute} {
		name := "nocache"
		if cache > 0 {
			name = "clientcache"
		}
		b.Run(name, func(b *testing.B) {
			r := redistest.Server(b, "--hash-max-listpack-value", "128")
			c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{r.Addr}, DisableCache: cache == 0})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(c.Close)
			st := open(b, c, Options{ClientCache: cache}, sessions.StoreConfig{IdleTimeout: time.Hour, Tick: time.Second})
			ids := make([]sessions.ID, 10000)
			for i := range ids {
				ids[i] = newID(b)
				if _, err := st.Create(bg, ids[i]); err != nil {
					b.Fatal(err)
				}
			}
			w0 := st.Stats().TouchWrites
			b.SetParallelism(32) // 64 callers on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(time.Now().UnixNano())
				for pb.Next() {
					i++
					if _, err := st.Lookup(bg, ids[uint(i)%uint(len(ids))], true); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(st.Stats().TouchWrites-w0)/float64(b.N), "writes/touch")
		})
	}
}

// Claim and Ack of endings due at once, no callbacks.
func BenchmarkClaimAck(b *testing.B) {
	r := redistest.Server(b)
	st := open(b, client(b, r.Addr), Options{}, sessions.StoreConfig{IdleTimeout: time.Millisecond, Tick: time.Millisecond})
	for i := 0; i < b.N; i++ {
		if _, err := st.Create(bg, newID(b)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer() // the last created is due a millisecond later: the loop waits for it
	n := 0
	for n < b.N {
		due, _, err := st.Claim(bg, 512)
		if err != nil {
			b.Fatal(err)
		}
		if err := st.Ack(bg, due); err != nil {
			b.Fatal(err)
		}
		n += len(due)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "endings/s")
}

// Redis memory per session with one 100-byte value (INFO used_memory), with
// hash-max-listpack-value at 128 and at Redis's default, 64.
func BenchmarkBytesPerSession(b *testing.B) {
	for _, lp := range []string{"128", "64"} {
		b.Run("listpack-"+lp, func(b *testing.B) {
			r := redistest.Server(b, "--hash-max-listpack-value", lp)
			st := open(b, client(b, r.Addr), Options{}, sessions.StoreConfig{IdleTimeout: time.Hour, Tick: time.Second})
			const n = 20000
			value := make([]byte, 100)
			used := func() float64 {
				info := r.MustDo("INFO", "memory")
				for _, line := range strings.Split(info, "\r\n") {
					if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
						f, _ := strconv.ParseFloat(v, 64)
						return f
					}
				}
				b.Fatal("no used_memory")
				return 0
			}
			for range b.N {
				base := used()
				for range n {
					id := newID(b)
					if _, err := st.Create(bg, id); err != nil {
						b.Fatal(err)
					}
					if err := st.SetValue(bg, id, "user", value); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric((used()-base)/n, "bytes/session")
				r.MustDo("FLUSHALL")
			}
		})
	}
}
