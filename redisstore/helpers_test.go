package redisstore

import (
	"context"
	"crypto/rand"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/sessionwheel/sessionwheel/redisstore/redistest"
	"github.com/sessionwheel/sessionwheel/sessions"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// After a cluster node fails, rueidis closes the connections a
		// topology refresh dropped 5 s later (cluster.go, _refresh) and
		// delays its next refresh (singleflight.go, DelayDo), in goroutines
		// that sleep past Client.Close: the library's, and bounded.
		goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*clusterClient)._refresh.func2"),
		goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*call).DelayDo.func1"))
}

// client returns a rueidis client on addrs, closed when the test ends
// (before the servers, which were started earlier, are killed).
func client(t testing.TB, addrs ...string) rueidis.Client {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: addrs, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// open returns an opened Store on c.
func open(t testing.TB, c rueidis.Client, o Options, cfg sessions.StoreConfig) *Store {
	t.Helper()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	st, err := New(c, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Open(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newID(t testing.TB) sessions.ID {
	var id sessions.ID
	if _, err := rand.Read(id[:]); err != nil {
		t.Fatal(err)
	}
	return id
}

var bg = context.Background()

// redisTime is the server's TIME in ms.
func redisTime(t testing.TB, r *redistest.Redis) int64 {
	t.Helper()
	v := r.MustDo("TIME")
	sec, usec, _ := strings.Cut(v, "\n")
	s, err1 := strconv.ParseInt(sec, 10, 64)
	u, err2 := strconv.ParseInt(usec, 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("TIME: %q", v)
	}
	return s*1000 + u/1000
}

// waitRedisTime waits until the server's clock has passed ms.
func waitRedisTime(t testing.TB, r *redistest.Redis, ms int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for redisTime(t, r) <= ms {
		if time.Now().After(deadline) {
			t.Fatalf("Redis time did not pass %d", ms)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// eventually polls cond until it holds, failing the test after timeout.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// claimAll claims until n endings are in, failing after timeout.
func claimAll(t testing.TB, st *Store, n int, timeout time.Duration) []sessions.Ending {
	t.Helper()
	var got []sessions.Ending
	eventually(t, timeout, strconv.Itoa(n)+" endings", func() bool {
		due, _, err := st.Claim(bg, 1000)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, due...)
		return len(got) >= n
	})
	return got
}

func ms2t(v int64) time.Time { return time.UnixMilli(v) }
