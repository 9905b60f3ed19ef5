package sessions_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	"github.com/sessionwheel/sessionwheel/sessions"
)

// ownerNames returns n distinct owner names of a typical length (a user
// ID or an e-mail address).
func ownerNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "user-" + strconv.Itoa(i) + "@example.com"
	}
	return out
}

// BenchmarkSetOwner measures SetOwner moving a session from one owner to
// another (leaving one set, joining another) among 10k owners of 10
// sessions each, with no limit and with MaxPerOwner 20 (the path that locks
// the owner's shards to count and pick a victim).
func BenchmarkSetOwner(b *testing.B) {
	for _, limit := range []int{0, 20} {
		b.Run(fmt.Sprintf("maxPerOwner=%d", limit), func(b *testing.B) {
			const n = 100_000
			m, _, _ := filled(b, n, sessions.Config{IdleTimeout: time.Hour, MaxPerOwner: limit})
			defer m.Close(context.Background())
			ss := make([]sessions.Session, 0, n)
			m.Range(func(s sessions.Session) bool { ss = append(ss, s); return true })
			owners := ownerNames(n / 10)
			for i, s := range ss {
				s.SetOwner(owners[i%len(owners)])
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				// i/n moves each pass to the next owner, so every call moves.
				if err := ss[i%n].SetOwner(owners[(i+i/n+1)%len(owners)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkOwned measures listing an owner's sessions, for owners of 1, 10
// and 1,000 sessions among 100k sessions.
func BenchmarkOwned(b *testing.B) {
	for _, per := range []int{1, 10, 1000} {
		b.Run(fmt.Sprintf("sessions=%d", per), func(b *testing.B) {
			const n = 100_000
			m, _, _ := filled(b, n, sessions.Config{IdleTimeout: time.Hour})
			defer m.Close(context.Background())
			owners := ownerNames(n / per)
			i := 0
			m.Range(func(s sessions.Session) bool {
				s.SetOwner(owners[i/per])
				i++
				return true
			})
			b.ReportAllocs()
			i = 0
			for b.Loop() {
				if got := m.Owned(owners[i%len(owners)]); len(got) != per {
					b.Fatalf("%d sessions listed, want %d", len(got), per)
				}
				i++
			}
		})
	}
}

// BenchmarkExpireOwner measures logging an owner out everywhere: ending its
// sessions (1, 10 or 1,000) with no-op callbacks, the callbacks included.
func BenchmarkExpireOwner(b *testing.B) {
	for _, per := range []int{1, 10, 1000} {
		b.Run(fmt.Sprintf("sessions=%d", per), func(b *testing.B) {
			m, _, _ := filled(b, 10_000, sessions.Config{IdleTimeout: time.Hour, OnExpire: func(sessions.Session, sessions.Reason) {}})
			defer m.Close(context.Background())
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				for range per {
					s, err := m.Create()
					if err != nil {
						b.Fatal(err)
					}
					s.SetOwner("alice")
				}
				b.StartTimer()
				if got := m.ExpireOwner("alice"); got != per {
					b.Fatalf("ExpireOwner = %d, want %d", got, per)
				}
				m.Sweep() // the callbacks have run
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*per), "ns/session")
		})
	}
}

// BenchmarkTouchOwner measures a touch by ID (Manager.Touch), random order,
// with n sessions live, all without an owner and all with one (10 sessions
// per owner), in the same run: an owner must not slow the touch path.
func BenchmarkTouchOwner(b *testing.B) {
	for _, n := range sizes(b) {
		for _, owned := range []bool{false, true} {
			m, ids := fill(b, n, sessions.Config{IdleTimeout: time.Hour})
			if owned {
				owners := ownerNames(n / 10)
				i := 0
				m.Range(func(s sessions.Session) bool {
					s.SetOwner(owners[i%len(owners)])
					i++
					return true
				})
			}
			random := shuffled(ids)
			b.Run(fmt.Sprintf("owned=%v/live=%s", owned, label(n)), func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if !m.Touch(random[i]) {
						b.Fatal("session not found")
					}
					if i++; i == len(random) {
						i = 0
					}
				}
			})
			m.Close(context.Background())
			runtime.GC()
		}
	}
}

// BenchmarkOwnerMemory reports the heap bytes an owner adds per owned
// session: n sessions, then each given one of n/10 owners (10 sessions per
// owner, as 1M sessions in 100k owners), measured after a GC before and
// after. Run with -benchtime=1x.
func BenchmarkOwnerMemory(b *testing.B) {
	for _, n := range sizes(b) {
		b.Run("live="+label(n), func(b *testing.B) {
			for b.Loop() {
				m, _, _ := filled(b, n, sessions.Config{DiscardOnClose: true})
				owners := ownerNames(n / 10)
				rand.New(rand.NewPCG(1, 2)).Shuffle(len(owners), func(i, j int) { owners[i], owners[j] = owners[j], owners[i] })
				var before, after runtime.MemStats
				runtime.GC()
				debug.FreeOSMemory()
				runtime.ReadMemStats(&before)
				i := 0
				m.Range(func(s sessions.Session) bool {
					s.SetOwner(owners[i%len(owners)])
					i++
					return true
				})
				runtime.GC()
				runtime.ReadMemStats(&after)
				runtime.KeepAlive(owners) // counted before and after: only the index's copies count
				if st := m.Stats(); st.OwnedSessions != n || st.Owners != n/10 {
					b.Fatalf("%d owned in %d owners", st.OwnedSessions, st.Owners)
				}
				b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(n), "B/owned-session")
				m.Close(context.Background())
			}
		})
	}
}
