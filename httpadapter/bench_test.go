package httpadapter

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sessionwheel/sessionwheel/sessions"
)

// BenchmarkMiddleware serves a request that carries a valid session cookie
// (among two other cookies, as browsers send them) to a handler that
// answers 204, on its own (bare) and behind this package's middleware. The
// handler checks that it sees the session. Subtract bare from sessionwheel
// for the middleware's overhead. The same benchmark with scs v2 beside it
// is in the bench module (cd bench && go test -run '^$' -bench Middleware),
// so that this module does not require scs.
func BenchmarkMiddleware(b *testing.B) {
	const idle = 15 * time.Minute
	var seen int
	run := func(b *testing.B, h http.Handler, cookie string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Cookie", "theme=dark; session="+cookie+"; lang=en")
		w := &discardWriter{h: http.Header{}}
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
		mw, err := Middleware(m, nil)
		if err != nil {
			b.Fatal(err)
		}
		s, _ := m.Create()
		h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, ok := FromRequest(r); ok {
				seen++
			}
			w.WriteHeader(http.StatusNoContent)
		}))
		run(b, h, s.String())
	})
}
