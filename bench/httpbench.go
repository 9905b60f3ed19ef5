package main

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"

	"github.com/sessionwheel/sessionwheel/httpadapter"
	"github.com/sessionwheel/sessionwheel/sessions"
)

// mOverhead is the in-process cost of a middleware: its ns/op minus the
// bare handler's.
const mOverhead = "overhead-ns/op"

// httpIdle is the sessions' idle timeout in the HTTP scenario: nothing
// expires while it runs.
const httpIdle = 30 * time.Minute

// An httpVariant is one row of the HTTP table: a handler chain with its
// sessions made.
type httpVariant struct {
	name   string
	perReq string
	setup  func(b *bench, n int, misses *atomic.Int64) (h http.Handler, cookies []string, cleanup func(), err error)
}

var httpVariants = []httpVariant{
	{
		name:   "bare",
		perReq: "the handler alone (it writes \"ok\"); clients still send a session cookie of the same length, which nothing reads.",
		setup:  setupBare,
	},
	{
		name: "sessionwheel",
		perReq: "httpadapter.Middleware over a sessions.Manager (Tick 1 s, IdleTimeout 30 min): reads the cookie without allocating, " +
			"Manager.GetString (parse, shard lock, probe, touch), one allocation for the request's scope; the handler checks httpadapter.FromRequest found the session.",
		setup: setupSessionwheel,
	},
	{
		name: "scs",
		perReq: "scs v2 SessionManager.LoadAndSave with its memstore (map[string]item under one RWMutex) and IdleTimeout 30 min: Request.Cookie, store Find, gob decode, " +
			"and, because IdleTimeout is set, a gob encode, store Commit (write lock) and a Set-Cookie on every request; the handler checks SessionManager.Token found the session.",
		setup: setupSCS,
	},
}

func okHandler(check func(*http.Request) bool, misses *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if check != nil && !check(r) {
			misses.Add(1)
		}
		_, _ = io.WriteString(w, "ok")
	})
}

func cookieHeaders(values []string, name string) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = name + "=" + v
	}
	return out
}

func setupBare(b *bench, n int, misses *atomic.Int64) (http.Handler, []string, func(), error) {
	vals := make([]string, n)
	var ids sessions.IDSource
	for i := range vals {
		vals[i] = ids.Next().String()
	}
	return okHandler(nil, misses), cookieHeaders(vals, httpadapter.DefaultCookieName), func() {}, nil
}

func setupSessionwheel(b *bench, n int, misses *atomic.Int64) (http.Handler, []string, func(), error) {
	m, err := sessions.New(sessions.Config{IdleTimeout: httpIdle, DiscardOnClose: true})
	if err != nil {
		return nil, nil, nil, err
	}
	vals := make([]string, n)
	for i := range vals {
		s, err := m.Create()
		if err != nil {
			return nil, nil, nil, err
		}
		vals[i] = s.ID().String()
	}
	mw, err := httpadapter.Middleware(m, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	h := mw(okHandler(func(r *http.Request) bool {
		_, ok := httpadapter.FromRequest(r)
		return ok
	}, misses))
	return h, cookieHeaders(vals, httpadapter.DefaultCookieName), func() { _ = m.Close(context.Background()) }, nil
}

func setupSCS(b *bench, n int, misses *atomic.Int64) (http.Handler, []string, func(), error) {
	store := memstore.New()
	sm := scs.New()
	sm.Store = store
	sm.IdleTimeout = httpIdle
	vals := make([]string, n)
	deadline := time.Now().Add(sm.Lifetime)
	expiry := time.Now().Add(httpIdle)
	var raw [32]byte
	for i := range vals {
		crand.Read(raw[:])
		vals[i] = base64.RawURLEncoding.EncodeToString(raw[:])
		data, err := sm.Codec.Encode(deadline, map[string]any{})
		if err != nil {
			return nil, nil, nil, err
		}
		if err := store.Commit(vals[i], data, expiry); err != nil {
			return nil, nil, nil, err
		}
	}
	h := sm.LoadAndSave(okHandler(func(r *http.Request) bool { return sm.Token(r.Context()) != "" }, misses))
	// The store's clean-up goroutine (once a minute) is left running:
	// MemStore.StopCleanup reads a channel that the goroutine itself
	// assigns when it starts, with nothing ordering the two (a data race in
	// scs v2.9.0). The HTTP scenario runs last, so it costs nothing else.
	return h, cookieHeaders(vals, sm.Cookie.Name), func() {}, nil
}

// httpScenario runs every variant: over loopback, then in process.
func (b *bench) httpScenario() error {
	hp := b.p.http
	b.res.http = httpSummary{
		ran:      true,
		sessions: hp.sessions,
		conns:    hp.conns,
		duration: hp.duration.String(),
		adapter:  "The sessionwheel row uses package httpadapter's middleware as shipped.",
	}
	for _, v := range httpVariants {
		b.step(v.name, hp.sessions, "http")
		release()
		if err := b.httpVariant(v); err != nil {
			return fmt.Errorf("http %s: %w", v.name, err)
		}
	}
	b.step("http", hp.sessions, "overhead")
	bare, ok := b.res.value(scHTTPInproc, "bare", hp.sessions, mNsOp)
	if ok {
		for _, v := range httpVariants[1:] {
			if x, ok := b.res.value(scHTTPInproc, v.name, hp.sessions, mNsOp); ok {
				b.add(scHTTPInproc, v.name, hp.sessions, mOverhead, x-bare)
			}
		}
	}
	return nil
}

func (b *bench) httpVariant(v httpVariant) error {
	hp := b.p.http
	var misses atomic.Int64
	h, cookies, cleanup, err := v.setup(b, hp.sessions, &misses)
	if err != nil {
		return err
	}
	defer cleanup()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	tr := &http.Transport{MaxIdleConnsPerHost: hp.conns, MaxConnsPerHost: hp.conns, DisableCompression: true}
	client := &http.Client{Transport: tr}
	url := "http://" + ln.Addr().String() + "/"

	var reqs, p50s, p99s, allocs []float64
	var runErr error
	for r := -1; r < b.p.runs; r++ {
		d := hp.duration
		if r < 0 {
			d = max(d/4, 50*time.Millisecond) // warm-up: connections, code, heap
		}
		misses.Store(0)
		rs, p50, p99, a, err := b.load(client, url, cookies, d, uint64(r+2))
		if err != nil {
			runErr = err
			break
		}
		if r < 0 {
			continue
		}
		reqs, p50s, p99s, allocs = append(reqs, rs), append(p50s, p50), append(p99s, p99), append(allocs, a)
	}
	tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil && runErr == nil {
		runErr = err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) && runErr == nil {
		runErr = err
	}
	if runErr != nil {
		return runErr
	}
	n := hp.sessions
	b.add(scHTTP, v.name, n, mReqs, median(reqs))
	b.add(scHTTP, v.name, n, mP50Us, median(p50s))
	b.add(scHTTP, v.name, n, mP99Us, median(p99s))
	b.add(scHTTP, v.name, n, mAllocsReq, median(allocs))
	if v.name != "bare" {
		b.add(scHTTP, v.name, n, mMissedReqs, float64(misses.Load()))
		if misses.Load() > 0 {
			b.note("http %s: %d requests did not find their session (all cookies name live sessions)", v.name, misses.Load())
		}
	}

	ns, a := b.inProcess(h, cookies)
	b.add(scHTTPInproc, v.name, n, mNsOp, ns)
	b.add(scHTTPInproc, v.name, n, mAllocsOp, a)
	return nil
}

// load runs hp.conns keep-alive clients for d, each sending requests one
// after another with the cookie of a random session, and returns
// requests/s, the median and 99th percentile latency in µs, and the
// process's allocations per request.
func (b *bench) load(client *http.Client, url string, cookies []string, d time.Duration, seed uint64) (rps, p50, p99, allocsReq float64, err error) {
	hp := b.p.http
	lat := make([][]float64, hp.conns)
	errs := make([]error, hp.conns)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	var stop atomic.Bool
	for c := range hp.conns {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(b.p.seed+seed, uint64(c)))
			req, err := http.NewRequest(http.MethodGet, url, nil)
			if err != nil {
				errs[c] = err
				return
			}
			req.Header["Cookie"] = []string{""}
			mine := make([]float64, 0, 1<<14)
			<-gate
			for !stop.Load() {
				req.Header["Cookie"][0] = cookies[rng.IntN(len(cookies))]
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					errs[c] = err
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				mine = append(mine, float64(time.Since(t0))/1e3)
				if resp.StatusCode != http.StatusOK {
					errs[c] = fmt.Errorf("status %s", resp.Status)
					return
				}
			}
			lat[c] = mine
		})
	}
	m0 := mallocs()
	t0 := time.Now()
	close(gate)
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	el := time.Since(t0)
	m1 := mallocs()
	if err := errors.Join(errs...); err != nil {
		return 0, 0, 0, 0, err
	}
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return 0, 0, 0, 0, errors.New("no request completed")
	}
	slices.Sort(all)
	return float64(len(all)) / el.Seconds(), quantile(all, 0.5), quantile(all, 0.99), float64(m1-m0) / float64(len(all)), nil
}

// discardWriter is a ResponseWriter that keeps nothing but the header.
type discardWriter struct{ h http.Header }

// Header, Write and WriteHeader implement http.ResponseWriter.
func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// inProcess calls the handler chain directly, with one reused request whose
// cookie names a random session each time, and returns ns and allocations
// per request (the median of the runs).
func (b *bench) inProcess(h http.Handler, cookies []string) (nsOp, allocsOp float64) {
	req, err := http.NewRequest(http.MethodGet, "http://bench.invalid/", nil)
	if err != nil {
		panic(err)
	}
	req.RemoteAddr = "127.0.0.1:1"
	req.Header["Cookie"] = []string{""}
	w := &discardWriter{h: http.Header{}}
	rng := rand.New(rand.NewPCG(b.p.seed, 99))
	order := make([]string, min(len(cookies), 1<<16))
	for i := range order {
		order[i] = cookies[rng.IntN(len(cookies))]
	}
	ops := max(b.p.touchOps/10, 1000)
	one := func() (float64, float64) {
		m0 := mallocs()
		t0 := time.Now()
		for i := range ops {
			req.Header["Cookie"][0] = order[i%len(order)]
			clear(w.h)
			h.ServeHTTP(w, req)
		}
		dt := time.Since(t0)
		m1 := mallocs()
		return float64(dt) / float64(ops), float64(m1-m0) / float64(ops)
	}
	one() // warm-up
	var ns, as []float64
	for range b.p.runs {
		n, a := one()
		ns, as = append(ns, n), append(as, a)
	}
	runtime.KeepAlive(req)
	return median(ns), median(as)
}
