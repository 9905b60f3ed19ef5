package httpadapter

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sessionwheel/sessionwheel/sessions"
	"github.com/sessionwheel/sessionwheel/sessions/sessionstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Timing of the managers the tests make.
const (
	testIdle = 10 * time.Second
	testTick = time.Second
)

// newManager returns a manager on a fake clock, closed when the test ends.
// Zero IdleTimeout and Tick in cfg mean testIdle and testTick.
func newManager(t testing.TB, cfg sessions.Config) (*sessions.Manager, *sessionstest.Clock) {
	t.Helper()
	clock := sessionstest.NewClock(time.Time{})
	cfg.Clock = clock
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = testIdle
	}
	if cfg.Tick == 0 {
		cfg.Tick = testTick
	}
	m, err := sessions.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m, clock
}

// testHandler serves:
//
//	/peek    FromRequest; writes the session's ID or "-"
//	/visit   GetSession; writes the ID
//	/login   Renew; writes the new ID
//	/logout  Expire
//
// Errors are written as "error: ..." with status 500.
func testHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/peek", func(w http.ResponseWriter, r *http.Request) {
		if s, ok := FromRequest(r); ok {
			fmt.Fprint(w, s.ID())
			return
		}
		fmt.Fprint(w, "-")
	})
	mux.HandleFunc("/visit", func(w http.ResponseWriter, r *http.Request) {
		s, err := GetSession(w, r)
		if err != nil {
			http.Error(w, "error: "+err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, s.ID())
	})
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		s, err := Renew(w, r)
		if err != nil {
			http.Error(w, "error: "+err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, s.ID())
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		if err := Expire(w, r); err != nil {
			http.Error(w, "error: "+err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "bye")
	})
	return mux
}

// wrapped returns testHandler behind the middleware for m.
func wrapped(t testing.TB, m *sessions.Manager, opts *Options) http.Handler {
	t.Helper()
	mw, err := Middleware(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	return mw(testHandler())
}

// do sends a GET for target through h, with one Cookie header line per
// element of cookies.
func do(h http.Handler, target string, cookies ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for _, c := range cookies {
		r.Header.Add("Cookie", c)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// setCookies returns the response's Set-Cookie lines.
func setCookies(w *httptest.ResponseRecorder) []string { return w.Result().Header.Values("Set-Cookie") }

// onlyCookie parses the response's only Set-Cookie line.
func onlyCookie(t testing.TB, w *httptest.ResponseRecorder) (*http.Cookie, string) {
	t.Helper()
	lines := setCookies(w)
	if len(lines) != 1 {
		t.Fatalf("Set-Cookie lines = %q, want 1", lines)
	}
	c, err := http.ParseSetCookie(lines[0])
	if err != nil {
		t.Fatalf("ParseSetCookie(%q): %v", lines[0], err)
	}
	return c, lines[0]
}
