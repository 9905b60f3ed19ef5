package httpadapter

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/sessionwheel/sessionwheel/sessions"
	"github.com/sessionwheel/sessionwheel/sessions/sessionstest"
)

// On a shared store that cannot be reached, a request with a session cookie
// is answered 503 and never gets a new session; without a cookie the
// handler runs and GetSession reports the store's error.
func TestStoreUnavailable(t *testing.T) {
	st := sessionstest.NewStore(nil, 0)
	m, _ := newManager(t, sessions.Config{Store: st})
	h := wrapped(t, m, &Options{Secure: SecureNever})
	w := do(h, "/visit")
	c, _ := onlyCookie(t, w)
	cookie := c.Name + "=" + c.Value

	st.SetUnavailable(true)
	for _, path := range []string{"/peek", "/visit", "/login", "/logout"} {
		w = do(h, path, cookie)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
			t.Errorf("%s with the store down: status %d, Retry-After %q; want 503 with Retry-After", path, w.Code, w.Header().Get("Retry-After"))
		}
		if lines := setCookies(w); len(lines) != 0 {
			t.Errorf("%s with the store down: Set-Cookie %q over a session that may be alive", path, lines)
		}
	}
	w = do(h, "/visit") // no cookie: the handler runs, Create fails
	if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), sessions.ErrUnavailable.Error()) || len(setCookies(w)) != 0 {
		t.Errorf("GetSession without a cookie, store down: %d %q, Set-Cookie %q", w.Code, w.Body.String(), setCookies(w))
	}

	st.SetUnavailable(false)
	if w = do(h, "/peek", cookie); w.Body.String() != c.Value {
		t.Errorf("after the outage: session %q, want the one from before (%s)", w.Body.String(), c.Value)
	}
}

// The store goes away between the middleware's lookup and the handler's
// GetSession: GetSession fails rather than replace a session that may be
// alive.
func TestStoreUnavailableInHandler(t *testing.T) {
	st := sessionstest.NewStore(nil, 0)
	m, _ := newManager(t, sessions.Config{Store: st})
	s, err := m.Create()
	if err != nil {
		t.Fatal(err)
	}
	mw, err := Middleware(m, &Options{Secure: SecureNever})
	if err != nil {
		t.Fatal(err)
	}
	var got error
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st.SetUnavailable(true)
		_, got = GetSession(w, r)
	}))
	w := do(h, "/", DefaultCookieName+"="+s.ID().String())
	if !errors.Is(got, sessions.ErrUnavailable) || len(setCookies(w)) != 0 {
		t.Fatalf("GetSession with the store gone mid-request: %v, Set-Cookie %q; want ErrUnavailable and no cookie", got, setCookies(w))
	}
}
