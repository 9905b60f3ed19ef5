package httpadapter

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionwheel/sessionwheel/sessions"
)

func TestLookupNeverCreates(t *testing.T) {
	m, _ := newManager(t, sessions.Config{})
	h := wrapped(t, m, nil)
	for _, cookies := range [][]string{nil, {"other=1"}, {"session=" + sessions.ID{1}.String()}} {
		w := do(h, "/peek", cookies...)
		if got := w.Body.String(); got != "-" {
			t.Errorf("cookies %q: session %q, want none", cookies, got)
		}
		if lines := setCookies(w); len(lines) != 0 {
			t.Errorf("cookies %q: Set-Cookie %q", cookies, lines)
		}
	}
	if n := m.Len(); n != 0 {
		t.Errorf("Len = %d after lookups only, want 0", n)
	}
}

func TestGetSession(t *testing.T) {
	m, _ := newManager(t, sessions.Config{})
	h := wrapped(t, m, nil)

	w := do(h, "/visit")
	id := w.Body.String()
	if w.Code != http.StatusOK || len(id) != sessions.IDLen {
		t.Fatalf("first visit: %d %q", w.Code, id)
	}
	c, line := onlyCookie(t, w)
	if c.Name != "session" || c.Value != id || c.Path != "/" || c.Domain != "" ||
		!c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure {
		t.Errorf("cookie %q", line)
	}
	if strings.Contains(line, "Max-Age") || strings.Contains(line, "Expires") {
		t.Errorf("cookie %q is persistent, want a browser-session cookie", line)
	}
	if got := w.Header().Values("Cache-Control"); len(got) != 1 || got[0] != `no-cache="Set-Cookie"` {
		t.Errorf("Cache-Control %q", got)
	}
	if got := w.Header().Values("Vary"); len(got) != 1 || got[0] != "Cookie" {
		t.Errorf("Vary %q", got)
	}

	w = do(h, "/visit", "session="+id)
	if got := w.Body.String(); got != id {
		t.Errorf("second visit: session %q, want %q", got, id)
	}
	if lines := setCookies(w); len(lines) != 0 {
		t.Errorf("second visit sets %q, want no cookie", lines)
	}
	if n := m.Len(); n != 1 {
		t.Errorf("Len = %d, want 1", n)
	}
}

func TestGetSessionTwiceInOneRequest(t *testing.T) {
	m, _ := newManager(t, sessions.Config{})
	mw, _ := Middleware(m, nil)
	var ids []sessions.ID
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for range 2 {
			s, err := GetSession(w, r)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, s.ID())
		}
		if s, ok := FromRequest(r); !ok || s.ID() != ids[0] {
			t.Errorf("FromRequest after GetSession = %v, %v", s, ok)
		}
	}))
	w := do(h, "/")
	if ids[0] != ids[1] {
		t.Errorf("GetSession gave %v then %v", ids[0], ids[1])
	}
	onlyCookie(t, w)
	if got := w.Header().Values("Cache-Control"); len(got) != 1 {
		t.Errorf("Cache-Control %q", got)
	}
	if n := m.Len(); n != 1 {
		t.Errorf("Len = %d, want 1", n)
	}
}

// TestTouchEveryRequest is the regression test for Twisted's forgetting to
// touch a session found through its cookie (since 18.9): a visitor who
// comes back every 0.8 idle timeouts keeps the session for 20 idle
// periods, and it ends one idle timeout (rounded up to a tick) after the
// last visit.
func TestTouchEveryRequest(t *testing.T) {
	var mu sync.Mutex
	var ended []sessions.Reason
	m, clock := newManager(t, sessions.Config{OnExpire: func(s sessions.Session, r sessions.Reason) {
		mu.Lock()
		ended = append(ended, r)
		mu.Unlock()
	}})
	endings := func() []sessions.Reason {
		mu.Lock()
		defer mu.Unlock()
		return append([]sessions.Reason(nil), ended...)
	}
	h := wrapped(t, m, nil)
	id := do(h, "/visit").Body.String()

	const visits = 25 // 25 * 0.8 = 20 idle periods
	for i := range visits {
		clock.Advance(testIdle * 8 / 10)
		m.Sweep()
		w := do(h, "/visit", "session="+id)
		if got := w.Body.String(); got != id {
			t.Fatalf("visit %d at %v: session %q, want %q (endings %v)", i+1, time.Duration(i+1)*testIdle*8/10, got, id, endings())
		}
		if lines := setCookies(w); len(lines) != 0 {
			t.Fatalf("visit %d sets %q", i+1, lines)
		}
	}
	if e := endings(); len(e) != 0 {
		t.Fatalf("endings %v while visiting", e)
	}

	// The visitor stops. The session lives a full idle timeout more (never
	// ends early) and ends within the tick after.
	clock.Advance(testIdle)
	m.Sweep()
	if _, ok := m.Peek(mustParse(t, id)); !ok {
		t.Fatalf("session ended less than IdleTimeout after the last visit (endings %v)", endings())
	}
	// A tick later it has ended.
	clock.Advance(testTick)
	m.Sweep()
	if e := endings(); len(e) != 1 || e[0] != sessions.Idle {
		t.Fatalf("endings %v, want [idle]", e)
	}
	w := do(h, "/visit", "session="+id)
	if got := w.Body.String(); got == id || len(got) != sessions.IDLen {
		t.Errorf("visit after expiry: session %q, want a new one", got)
	}
}

// TestTouchWithoutLooking: the touch is the middleware's, so a request
// that presents the cookie touches the session even if the handler never
// looks at it.
func TestTouchWithoutLooking(t *testing.T) {
	m, clock := newManager(t, sessions.Config{})
	mw, _ := Middleware(m, nil)
	h := mw(http.NotFoundHandler())
	s, _ := m.Create()
	for range 5 {
		clock.Advance(testIdle - testTick)
		m.Sweep()
		do(h, "/", "session="+s.String())
	}
	if !s.Alive() {
		t.Fatal("session ended although every request presented its cookie")
	}
}

func TestTLS(t *testing.T) {
	m, _ := newManager(t, sessions.Config{})
	srv := httptest.NewTLSServer(wrapped(t, m, nil))
	defer srv.Close()
	client := srv.Client()
	defer client.CloseIdleConnections()
	jar, _ := cookiejar.New(nil)
	client.Jar = jar

	get := func(path string, header ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		for _, h := range header {
			req.Header.Add("Cookie", h)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}

	resp, id := get("/visit")
	cs := resp.Cookies()
	if len(cs) != 1 {
		t.Fatalf("cookies %v", resp.Header["Set-Cookie"])
	}
	c := cs[0]
	if c.Name != "__Host-session" || c.Value != id || !c.Secure || !c.HttpOnly || c.Path != "/" ||
		c.Domain != "" || c.SameSite != http.SameSiteLaxMode || c.MaxAge != 0 {
		t.Errorf("cookie over TLS: %q", resp.Header["Set-Cookie"])
	}
	resp, got := get("/visit")
	if got != id || len(resp.Cookies()) != 0 {
		t.Errorf("second visit over TLS: %q, cookies %q", got, resp.Header["Set-Cookie"])
	}

	// Over TLS only the prefixed name is read: a cookie of the plain name,
	// even one naming a live session, is ignored.
	client.Jar = nil
	other, _ := m.Create()
	if _, got := get("/peek", "session="+other.String()); got != "-" {
		t.Errorf("plain-named cookie read over TLS: %q", got)
	}
	if _, got := get("/peek", "__Host-session="+other.String()); got != other.String() {
		t.Errorf("__Host- cookie not read over TLS: %q", got)
	}

	// And over plain HTTP only the plain name.
	h := wrapped(t, m, nil)
	if got := do(h, "/peek", "__Host-session="+other.String()).Body.String(); got != "-" {
		t.Errorf("__Host- cookie read over plain HTTP: %q", got)
	}
}

func TestCookieJar(t *testing.T) {
	m, _ := newManager(t, sessions.Config{})
	srv := httptest.NewServer(wrapped(t, m, nil))
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	defer client.CloseIdleConnections()
	get := func(path string) string {
		t.Helper()
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	u, _ := url.Parse(srv.URL)

	id := get("/visit")
	if got := get("/visit"); got != id {
		t.Fatalf("second visit %q, want %q", got, id)
	}
	if got := get("/logout"); got != "bye" {
		t.Fatalf("logout: %q", got)
	}
	if cs := jar.Cookies(u); len(cs) != 0 {
		t.Errorf("jar keeps %v after logout", cs)
	}
	if got := get("/peek"); got != "-" {
		t.Errorf("session %q after logout", got)
	}
	if got := get("/visit"); got == id || len(got) != sessions.IDLen {
		t.Errorf("visit after logout: %q", got)
	}
}

func TestOptions(t *testing.T) {
	type want struct {
		name, path, domain string
		sameSite           http.SameSite
		secure             bool
		maxAge             int
	}
	plain := want{"session", "/", "", http.SameSiteLaxMode, false, 0}
	with := func(f func(*want)) want { w := plain; f(&w); return w }
	for _, tc := range []struct {
		desc string
		opts *Options
		tls  bool
		want want
	}{
		{"defaults", nil, false, plain},
		{"defaults over TLS", nil, true, with(func(w *want) { w.name, w.secure = "__Host-session", true })},
		{"zero options", &Options{}, false, plain},
		{"SecureAlways", &Options{Secure: SecureAlways}, false, with(func(w *want) { w.name, w.secure = "__Host-session", true })},
		{"SecureNever over TLS", &Options{Secure: SecureNever}, true, plain},
		{"NoHostPrefix", &Options{NoHostPrefix: true}, true, with(func(w *want) { w.secure = true })},
		{"Domain", &Options{Domain: "example.com"}, true, with(func(w *want) { w.domain, w.secure = "example.com", true })},
		{"Path", &Options{Path: "/app/"}, true, with(func(w *want) { w.path, w.secure = "/app/", true })},
		{"name and Strict", &Options{CookieName: "sid", SameSite: http.SameSiteStrictMode}, false,
			with(func(w *want) { w.name, w.sameSite = "sid", http.SameSiteStrictMode })},
		{"SameSite default", &Options{SameSite: http.SameSiteDefaultMode}, false, with(func(w *want) { w.sameSite = 0 })},
		{"SameSite None", &Options{SameSite: http.SameSiteNoneMode}, true,
			with(func(w *want) { w.name, w.secure, w.sameSite = "__Host-session", true, http.SameSiteNoneMode })},
		{"MaxAge", &Options{MaxAge: 90 * time.Minute}, false, with(func(w *want) { w.maxAge = 5400 })},
		{"MaxAge rounds up", &Options{MaxAge: 1500 * time.Millisecond}, false, with(func(w *want) { w.maxAge = 2 })},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			m, _ := newManager(t, sessions.Config{})
			h := wrapped(t, m, tc.opts)
			target := "http://example.com/app/visit"
			if tc.tls {
				target = "https://example.com/app/visit"
			}
			serve := func(path, cookie string) *httptest.ResponseRecorder {
				r := httptest.NewRequest(http.MethodGet, strings.Replace(target, "/app/visit", path, 1), nil)
				if cookie != "" {
					r.Header.Set("Cookie", cookie)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w
			}
			w := serve("/visit", "")
			c, line := onlyCookie(t, w)
			got := want{c.Name, c.Path, c.Domain, c.SameSite, c.Secure, c.MaxAge}
			if got != tc.want || !c.HttpOnly || c.Value != w.Body.String() {
				t.Errorf("cookie %q\ngot  %+v\nwant %+v", line, got, tc.want)
			}
			if tc.want.sameSite == 0 && strings.Contains(line, "SameSite") {
				t.Errorf("cookie %q has SameSite", line)
			}
			// The cookie as the browser sends it back names the session.
			if got := serve("/peek", c.Name+"="+c.Value).Body.String(); got != c.Value {
				t.Errorf("cookie sent back: session %q, want %q", got, c.Value)
			}
			// And the clearing cookie has the same name, path and domain.
			w = serve("/logout", c.Name+"="+c.Value)
			cl, line := onlyCookie(t, w)
			if cl.Name != c.Name || cl.Path != c.Path || cl.Domain != c.Domain || cl.Secure != c.Secure ||
				cl.Value != "" || cl.MaxAge != -1 {
				t.Errorf("clearing cookie %q", line)
			}
		})
	}
}

func TestInvalidOptions(t *testing.T) {
	m, _ := newManager(t, sessions.Config{})
	if _, err := Middleware(nil, nil); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("nil manager: %v", err)
	}
	for _, o := range []Options{
		{CookieName: "bad name"},
		{CookieName: "a;b"},
		{CookieName: "a=b"},
		{CookieName: "__Host-session"},
		{CookieName: "__Secure-session"},
		{CookieName: "__host-session"},
		{CookieName: "sessión"},
		{Domain: "bad domain"},
		{Domain: "a;b.com"},
		{Path: "app"},
		{Path: "/a;b"},
		{Path: "/a\x7f"},
		{Path: "/a\nb"},
		{SameSite: http.SameSiteNoneMode, Secure: SecureNever},
		{SameSite: 9},
		{Secure: 3},
		{MaxAge: -time.Second},
	} {
		mw, err := Middleware(m, &o)
		if !errors.Is(err, ErrInvalidOptions) || mw != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

func TestExpire(t *testing.T) {
	ended := make(chan string, 10)
	m, _ := newManager(t, sessions.Config{OnExpire: func(s sessions.Session, r sessions.Reason) {
		ended <- s.String() + " " + r.String()
	}})
	h := wrapped(t, m, nil)
	id := do(h, "/visit").Body.String()

	w := do(h, "/logout", "session="+id)
	if w.Code != http.StatusOK {
		t.Fatalf("logout: %d %s", w.Code, w.Body)
	}
	_, line := onlyCookie(t, w)
	if want := "session=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; SameSite=Lax"; line != want {
		t.Errorf("clearing cookie\n%q, want\n%q", line, want)
	}
	m.Sweep() // waits for the callbacks
	select {
	case e := <-ended:
		if e != id+" explicit" {
			t.Errorf("ended %q", e)
		}
	default:
		t.Fatal("no callback after Expire")
	}

	// The old cookie no longer works; a second logout has nothing to end
	// but still clears the stale cookie.
	misses := m.Stats().LookupMisses
	if got := do(h, "/peek", "session="+id).Body.String(); got != "-" {
		t.Errorf("expired cookie still works: %q", got)
	}
	if m.Stats().LookupMisses != misses+1 {
		t.Error("expired cookie not counted as a miss")
	}
	w = do(h, "/logout", "session="+id)
	if !strings.Contains(w.Body.String(), ErrNoSession.Error()) {
		t.Errorf("second logout: %s", w.Body)
	}
	onlyCookie(t, w)
	// Without a cookie there is nothing to clear.
	w = do(h, "/logout")
	if lines := setCookies(w); len(lines) != 0 || !strings.Contains(w.Body.String(), ErrNoSession.Error()) {
		t.Errorf("logout without cookie: %q %s", lines, w.Body)
	}
	if len(ended) != 0 {
		t.Errorf("more callbacks: %q", <-ended)
	}
}

func TestExpireThenGetSession(t *testing.T) {
	m, _ := newManager(t, sessions.Config{})
	mw, _ := Middleware(m, nil)
	old, _ := m.Create()
	var fresh sessions.Session
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := Expire(w, r); err != nil {
			t.Error(err)
		}
		if _, ok := FromRequest(r); ok {
			t.Error("FromRequest finds a session after Expire")
		}
		var err error
		if fresh, err = GetSession(w, r); err != nil {
			t.Error(err)
		}
	}))
	w := do(h, "/", "session="+old.String())
	c, line := onlyCookie(t, w) // the clearing cookie was replaced
	if c.Value != fresh.String() || fresh.ID() == old.ID() || c.MaxAge != 0 {
		t.Errorf("cookie %q, old %v, new %v", line, old, fresh)
	}
}

func TestRenew(t *testing.T) {
	m, _ := newManager(t, sessions.Config{})
	h := wrapped(t, m, nil)
	old := do(h, "/visit").Body.String()
	s, _ := m.Peek(mustParse(t, old))
	s.Set("user", "alice")

	w := do(h, "/login", "session="+old)
	id := w.Body.String()
	if w.Code != http.StatusOK || id == old || len(id) != sessions.IDLen {
		t.Fatalf("renew: %d %q (old %q)", w.Code, id, old)
	}
	c, line := onlyCookie(t, w)
	if c.Name != "session" || c.Value != id || !c.HttpOnly || c.Path != "/" {
		t.Errorf("cookie after renew %q", line)
	}
	if got := do(h, "/peek", "session="+old).Body.String(); got != "-" {
		t.Errorf("old cookie still works after renew: %q", got)
	}
	if got := do(h, "/peek", "session="+id).Body.String(); got != id {
		t.Errorf("new cookie: %q", got)
	}
	s, _ = m.Peek(mustParse(t, id))
	if v, err := s.Get("user"); v != "alice" {
		t.Errorf("value after renew: %v, %v", v, err)
	}
	if w := do(h, "/login"); !strings.Contains(w.Body.String(), ErrNoSession.Error()) || len(setCookies(w)) != 0 {
		t.Errorf("renew without session: %s %q", w.Body, setCookies(w))
	}
	if w := do(h, "/login", "session="+old); !strings.Contains(w.Body.String(), ErrNoSession.Error()) {
		t.Errorf("renew with old cookie: %s", w.Body)
	}
}

func TestRenewAfterGetSession(t *testing.T) {
	m, _ := newManager(t, sessions.Config{})
	mw, _ := Middleware(m, nil)
	var last sessions.Session
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "theme", Value: "dark"})
		if _, err := GetSession(w, r); err != nil {
			t.Fatal(err)
		}
		var err error
		if last, err = Renew(w, r); err != nil {
			t.Fatal(err)
		}
	}))
	w := do(h, "/")
	lines := setCookies(w)
	if len(lines) != 2 || lines[0] != "theme=dark" || lines[1] != (&http.Cookie{
		Name: "session", Value: last.String(), Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
	}).String() {
		t.Errorf("Set-Cookie %q, want the other cookie and the renewed session's", lines)
	}
	if n := m.Len(); n != 1 {
		t.Errorf("Len = %d", n)
	}
}

func TestSessionEndedDuringRequest(t *testing.T) {
	m, _ := newManager(t, sessions.Config{})
	mw, _ := Middleware(m, nil)
	old, _ := m.Create()
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.Expire(old.ID()) // another request logs out
		s, err := GetSession(w, r)
		if err != nil || s.ID() == old.ID() || !s.Alive() {
			t.Errorf("GetSession = %v, %v; want a new live session", s, err)
		}
		if _, err := Renew(w, r); err != nil {
			t.Errorf("Renew of the new session: %v", err)
		}
	}))
	do(h, "/", "session="+old.String())

	h = mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.Expire(old.ID())
		if _, err := Renew(w, r); !errors.Is(err, ErrNoSession) {
			t.Errorf("Renew of an ended session: %v", err)
		}
		if _, ok := FromRequest(r); ok {
			t.Error("FromRequest after a failed Renew")
		}
	}))
	old, _ = m.Create()
	do(h, "/", "session="+old.String())
}

func TestNoMiddleware(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := FromRequest(r); ok {
			t.Error("FromRequest found a session")
		}
		if _, err := GetSession(w, r); !errors.Is(err, ErrNoMiddleware) {
			t.Errorf("GetSession: %v", err)
		}
		if _, err := Renew(w, r); !errors.Is(err, ErrNoMiddleware) {
			t.Errorf("Renew: %v", err)
		}
		if err := Expire(w, r); !errors.Is(err, ErrNoMiddleware) {
			t.Errorf("Expire: %v", err)
		}
	})
	if w := do(h, "/", "session="+sessions.ID{}.String()); len(setCookies(w)) != 0 {
		t.Error(setCookies(w))
	}
}

func TestGetSessionErrors(t *testing.T) {
	m, _ := newManager(t, sessions.Config{MaxSessions: 1})
	h := wrapped(t, m, nil)
	do(h, "/visit")
	w := do(h, "/visit")
	if !strings.Contains(w.Body.String(), sessions.ErrTooManySessions.Error()) || len(setCookies(w)) != 0 {
		t.Errorf("visit beyond MaxSessions: %s %q", w.Body, setCookies(w))
	}
	m.Close(context.Background())
	w = do(h, "/visit")
	if !strings.Contains(w.Body.String(), sessions.ErrClosed.Error()) || len(setCookies(w)) != 0 {
		t.Errorf("visit after Close: %s %q", w.Body, setCookies(w))
	}
	mw, _ := Middleware(m, nil)
	mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := GetSession(w, r); !errors.Is(err, sessions.ErrClosed) {
			t.Errorf("GetSession after Close: %v", err)
		}
	})).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
}

// TestContext checks that the request's new context behaves as its parent:
// values, deadline and cancellation pass through, also to contexts the
// handler derives from it.
func TestContext(t *testing.T) {
	m, _ := newManager(t, sessions.Config{})
	mw, _ := Middleware(m, nil)
	s, _ := m.Create()
	type key struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	var derived context.Context
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Value(key{}) != "v" {
			t.Error("parent's value lost")
		}
		ctx, stop := context.WithCancel(r.Context())
		t.Cleanup(stop)
		derived = ctx
		r2 := r.WithContext(context.WithValue(ctx, "other", 1))
		if got, ok := FromRequest(r2); !ok || got.ID() != s.ID() {
			t.Errorf("FromRequest through a derived context: %v %v", got, ok)
		}
	}))
	r := httptest.NewRequestWithContext(parent, http.MethodGet, "/", nil)
	r.Header.Set("Cookie", "session="+s.String())
	h.ServeHTTP(httptest.NewRecorder(), r)
	cancel()
	select {
	case <-derived.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("cancelling the request's context did not reach a context derived in the handler")
	}
}

func TestHostileCookies(t *testing.T) {
	m, _ := newManager(t, sessions.Config{})
	a, err := newAdapter(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := a.wrap(testHandler())
	live, _ := m.Create()
	live2, _ := m.Create()
	gone, _ := m.Create()
	m.Expire(gone.ID())
	m.Sweep()
	L, L2, E := live.String(), live2.String(), gone.String()

	for _, tc := range []struct {
		desc             string
		cookies          []string
		want             string // the session found, or ""
		rejected, misses uint64
	}{
		{"empty", []string{"session="}, "", 1, 0},
		{"no value", []string{"session"}, "", 1, 0},
		{"empty header", []string{""}, "", 0, 0},
		{"10 KB", []string{"session=" + strings.Repeat("A", 10<<10)}, "", 1, 0},
		{"10 KB of other cookies", []string{strings.Repeat("x=y; ", 2<<10) + "session=" + L}, L, 0, 0},
		{"standard base64", []string{"session=+" + L[1:21] + "/"}, "", 1, 0},
		{"padding", []string{"session=" + L[:20] + "=="}, "", 1, 0},
		{"short", []string{"session=" + L[:21]}, "", 1, 0},
		{"long", []string{"session=" + L + "A"}, "", 1, 0},
		{"non-canonical trailing bits", []string{"session=" + L[:21] + "B"}, "", 1, 0},
		{"non-ASCII", []string{"session=" + strings.Repeat("é", 11)}, "", 1, 0},
		{"invalid UTF-8", []string{"session=" + strings.Repeat("\xff", 22)}, "", 1, 0},
		{"NUL", []string{"session=" + strings.Repeat("\x00", 22)}, "", 1, 0},
		{"space inside", []string{"session= " + L[1:]}, "", 1, 0},
		{"unknown", []string{"session=" + sessions.ID{1, 2, 3}.String()}, "", 0, 1},
		{"ended", []string{"session=" + E}, "", 0, 1},
		{"other names", []string{"Session=" + L + "; sessionx=" + L + "; xsession=" + L + "; __Host-session=" + L}, "", 0, 0},
		{"live", []string{"session=" + L}, L, 0, 0},
		{"live, spaced and quoted", []string{` a=b ;  session ="` + L + `" ; c=d`}, L, 0, 0},
		{"repeated, live first", []string{"session=" + L + "; session=junk"}, L, 0, 0},
		{"repeated, junk first", []string{"session=junk; session=" + L}, L, 1, 0},
		{"repeated, ended first", []string{"session=" + E + "; session=" + L}, L, 0, 1},
		{"repeated, two live", []string{"session=" + L2 + "; session=" + L}, L2, 0, 0},
		{"repeated, two live swapped", []string{"session=" + L + "; session=" + L2}, L, 0, 0},
		{"repeated, same", []string{"session=" + L + "; session=" + L}, L, 0, 0},
		{"repeated over header lines", []string{"a=b; session=junk", "session=" + L}, L, 1, 0},
		{"repeated, past the limit", []string{strings.Repeat("session=junk; ", maxCandidates) + "session=" + L}, "", maxCandidates, 0},
		{"repeated, past the limit over lines", []string{
			strings.Repeat("session=junk; ", maxCandidates-1), "session=junk", "session=" + L}, "", maxCandidates, 0},
		{"repeated, at the limit", []string{strings.Repeat("session=junk; ", maxCandidates-1) + "session=" + L}, L, maxCandidates - 1, 0},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			before := m.Stats()
			w := do(h, "/peek", tc.cookies...)
			got := w.Body.String()
			if got == "-" {
				got = ""
			}
			after := m.Stats()
			if got != tc.want {
				t.Errorf("session %q, want %q", got, tc.want)
			}
			if d := after.LookupRejected - before.LookupRejected; d != tc.rejected {
				t.Errorf("rejected +%d, want +%d", d, tc.rejected)
			}
			if d := after.LookupMisses - before.LookupMisses; d != tc.misses {
				t.Errorf("misses +%d, want +%d", d, tc.misses)
			}
			if lines := setCookies(w); len(lines) != 0 {
				t.Errorf("Set-Cookie %q", lines)
			}
			if n := m.Len(); n != 2 {
				t.Errorf("Len = %d, want 2", n)
			}

			// Parsing and looking up cost no allocation.
			hdr := http.Header{"Cookie": tc.cookies}
			if n := testing.AllocsPerRun(100, func() { a.find(hdr, "session") }); n != 0 {
				t.Errorf("find allocates %v times", n)
			}

			// Never adopted: GetSession makes a new session with a fresh ID.
			if tc.want == "" {
				w := do(h, "/visit", tc.cookies...)
				id := w.Body.String()
				if w.Code != http.StatusOK || len(id) != sessions.IDLen || strings.Contains(strings.Join(tc.cookies, ";"), id) {
					t.Errorf("visit: %d %q", w.Code, id)
				}
				m.Expire(mustParse(t, id))
			}
		})
	}
}

func TestAllocs(t *testing.T) {
	m, _ := newManager(t, sessions.Config{})
	mw, _ := Middleware(m, nil)
	s, _ := m.Create()
	found := 0
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := FromRequest(r); ok {
			found++
		}
	}))
	for _, tc := range []struct {
		desc, cookie string
		found        bool
	}{
		{"valid cookie", "a=b; session=" + s.String(), true},
		{"no cookie", "", false},
		{"hostile cookie", "session=" + strings.Repeat("\xff", 10<<10), false},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if tc.cookie != "" {
			r.Header.Set("Cookie", tc.cookie)
		}
		w := discardWriter{h: http.Header{}}
		found = 0
		n := testing.AllocsPerRun(1000, func() { h.ServeHTTP(&w, r) })
		if n > 1 {
			t.Errorf("%s: %v allocations per request, want at most 1", tc.desc, n)
		}
		if (found > 0) != tc.found {
			t.Errorf("%s: found %d times", tc.desc, found)
		}
	}
}

// discardWriter is a ResponseWriter that keeps nothing but its header.
type discardWriter struct {
	h    http.Header
	code int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }

func mustParse(t testing.TB, text string) sessions.ID {
	t.Helper()
	id, err := sessions.ParseID(text)
	if err != nil {
		t.Fatalf("ParseID(%q): %v", text, err)
	}
	return id
}
