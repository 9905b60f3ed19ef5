package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"

	"github.com/sessionwheel/sessionwheel/httpadapter"
	"github.com/sessionwheel/sessionwheel/sessions"
)

// BenchmarkMiddleware serves a request that carries a valid session cookie
// (among two other cookies, as browsers send them) to a handler that
// answers 204, on its own (bare), behind httpadapter's middleware, and
// behind scs v2's LoadAndSave with its memstore and IdleTimeout set, which
// is what the middleware replaces. The handler checks that it sees the
// session. Subtract bare from the others for the middleware's overhead.
//
// It lives here rather than in package httpadapter so that the library's
// tests do not require scs; httpadapter keeps the bare and sessionwheel
// halves. With one live session it measures the code path, not the cache
// misses of a large table: the harness's http-inproc scenario does that.
func BenchmarkMiddleware(b *testing.B) {
	const idle = 15 * time.Minute
	var seen int
	run := func(b *testing.B, h http.Handler, cookie string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Cookie", "theme=dark; session="+cookie+"; lang=en")
		w := &statusWriter{h: http.Header{}}
		seen = 0
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			clear(w.h)
			h.ServeHTTP(w, r)
		}
		b.StopTimer()
		if w.code != http.StatusNoContent || seen != b.N {
			b.Fatalf("status %d, session seen in %d of %d requests", w.code, seen, b.N)
		}
	}

	b.Run("bare", func(b *testing.B) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen++
			w.WriteHeader(http.StatusNoContent)
		})
		run(b, h, "x")
	})

	b.Run("sessionwheel", func(b *testing.B) {
		m, err := sessions.New(sessions.Config{IdleTimeout: idle})
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close(context.Background())
		mw, err := httpadapter.Middleware(m, nil)
		if err != nil {
			b.Fatal(err)
		}
		s, _ := m.Create()
		h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, ok := httpadapter.FromRequest(r); ok {
				seen++
			}
			w.WriteHeader(http.StatusNoContent)
		}))
		run(b, h, s.String())
	})

	b.Run("scs", func(b *testing.B) {
		sm := scs.New() // with a memstore.MemStore, whose cleanup goroutine is stopped below
		defer sm.Store.(*memstore.MemStore).StopCleanup()
		sm.IdleTimeout = idle
		// A first request starts the session and gives its token.
		start := sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sm.Put(r.Context(), "user", "alice")
		}))
		rec := httptest.NewRecorder()
		start.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		var token string
		for _, c := range rec.Result().Cookies() {
			if c.Name == sm.Cookie.Name {
				token = c.Value
			}
		}
		if token == "" {
			b.Fatal("scs set no cookie")
		}
		h := sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if sm.Exists(r.Context(), "user") {
				seen++
			}
			w.WriteHeader(http.StatusNoContent)
		}))
		run(b, h, token)
	})
}

// statusWriter is a ResponseWriter that keeps its header and status code
// and discards the body.
type statusWriter struct {
	h    http.Header
	code int
}

func (w *statusWriter) Header() http.Header         { return w.h }
func (w *statusWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *statusWriter) WriteHeader(code int)        { w.code = code }
