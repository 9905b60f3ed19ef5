package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sessionwheel/sessionwheel/sessions"
)

// cookieID returns the session ID the jar holds, or "".
func cookieID(jar http.CookieJar) string {
	for _, c := range jar.Cookies(httptest.NewRequest(http.MethodGet, "http://sessiond.test/", nil).URL) {
		if c.Name == "session" {
			return c.Value
		}
	}
	return ""
}

// TestOwnersDemo: two browsers log in as alice and one as bob; /sessions
// lists alice's two sessions to either of hers, by tag, never by ID, and
// nothing of bob's; a logout everywhere ends both of hers and leaves bob's.
func TestOwnersDemo(t *testing.T) {
	ts := newTestServer(t, testConfig(t, 5*time.Second, 100*time.Millisecond))
	a1, a2, b := newJar(t), newJar(t), newJar(t)
	before := ts.logme(t, a1)
	for jar, user := range map[http.CookieJar]string{a1: "alice", a2: "alice", b: "bob"} {
		w := ts.post(jar, "/login?user="+user)
		if w.Code != http.StatusOK || w.Header().Get("Cache-Control") != "no-store" ||
			!strings.HasPrefix(w.Body.String(), `You are logged in as "`+user+`"`) {
			t.Fatalf("POST /login as %s: %d %v %q", user, w.Code, w.Header(), w.Body.String())
		}
	}
	if after := cookieID(a1); after == before || after == "" {
		t.Fatalf("login kept the session ID %s (session fixation)", before)
	}
	if _, ok := ts.m.Get(mustParse(t, before)); ok {
		t.Fatal("the pre-login ID still names a session")
	}

	w := ts.get(a1, "/sessions")
	body := w.Body.String()
	if w.Code != http.StatusOK || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("GET /sessions: %d %v", w.Code, w.Header())
	}
	for _, want := range []string{`"alice" has 2 sessions:`, sessionTag(mustParse(t, cookieID(a1))) + "  started",
		sessionTag(mustParse(t, cookieID(a2))), "(this one)"} {
		if !strings.Contains(body, want) {
			t.Errorf("/sessions lacks %q:\n%s", want, body)
		}
	}
	for _, secret := range []string{cookieID(a1), cookieID(a2), cookieID(b), sessionTag(mustParse(t, cookieID(b))), "bob"} {
		if strings.Contains(body, secret) {
			t.Errorf("/sessions shows %q:\n%s", secret, body)
		}
	}
	if strings.Count(body, "(this one)") != 1 {
		t.Errorf("/sessions marks %d sessions as this one", strings.Count(body, "(this one)"))
	}

	w = ts.post(a2, "/logout?everywhere=1")
	if w.Code != http.StatusOK || w.Body.String() != "2 sessions of \"alice\" ended.\n" {
		t.Fatalf("POST /logout?everywhere=1: %d %q", w.Code, w.Body.String())
	}
	ts.m.Sweep()
	if l := ts.lines(t); len(l) != 2 {
		t.Fatalf("printed %q, want the lines of alice's two sessions", l)
	}
	if got := ts.get(a1, "/sessions").Body.String(); got != "You are not logged in.\n" {
		t.Errorf("alice's other browser after logout everywhere: %q", got)
	}
	if got := ts.get(b, "/sessions").Body.String(); !strings.HasPrefix(got, `"bob" has 1 session:`) {
		t.Errorf("bob after alice logged out everywhere: %q", got)
	}
	// A plain logout still ends one session only.
	if got := ts.post(b, "/logout").Body.String(); !strings.HasSuffix(got, "has ended.\n") {
		t.Errorf("plain /logout: %q", got)
	}
}

func mustParse(t *testing.T, text string) sessions.ID {
	t.Helper()
	id, err := sessions.ParseID(text)
	if err != nil {
		t.Fatalf("%q: %v", text, err)
	}
	return id
}

// TestLoginInput: only POST, a user name of 1 to MaxOwnerLen bytes, in
// the form body or the query; no session started for a refused login.
func TestLoginInput(t *testing.T) {
	ts := newTestServer(t, testConfig(t, 5*time.Second, 100*time.Millisecond))
	jar := newJar(t)
	if w := ts.get(jar, "/login?user=alice"); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /login: %d", w.Code)
	}
	for _, user := range []string{"", strings.Repeat("x", sessions.MaxOwnerLen+1)} {
		if w := ts.post(jar, "/login?user="+url.QueryEscape(user)); w.Code != http.StatusBadRequest {
			t.Errorf("login as %d bytes: %d", len(user), w.Code)
		}
	}
	if ts.m.Len() != 0 || cookieID(jar) != "" {
		t.Error("a refused login started a session")
	}
	// The page's form posts the name in the body; any bytes go.
	user := strings.Repeat("é", sessions.MaxOwnerLen/2) // 256 bytes
	r := httptest.NewRequest(http.MethodPost, "http://sessiond.test/login", strings.NewReader("user="+url.QueryEscape(user)))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Accept", "text/html")
	w := httptest.NewRecorder()
	ts.h.ServeHTTP(w, r)
	if w.Code != http.StatusSeeOther || len(ts.m.Owned(user)) != 1 {
		t.Fatalf("form login: %d, %d sessions owned", w.Code, len(ts.m.Owned(user)))
	}
}

// TestLandingPageOwner: the page shows who is logged in, escaped, the
// owner's sessions by tag, and the form to log out everywhere.
func TestLandingPageOwner(t *testing.T) {
	ts := newTestServer(t, testConfig(t, 5*time.Second, 100*time.Millisecond))
	jar := newJar(t)
	if body := ts.get(jar, "/").Body.String(); !strings.Contains(body, `<form method="post" action="/login">`) ||
		!strings.Contains(body, `id="not-logged-in"`) {
		t.Errorf("page without a login lacks the login form:\n%s", body)
	}
	ts.post(jar, "/login?user="+url.QueryEscape("<b>eve</b>"))
	body := ts.get(jar, "/").Body.String()
	for _, want := range []string{`<strong id="owner">&lt;b&gt;eve&lt;/b&gt;</strong>`, `<td id="owners">1</td>`,
		sessionTag(mustParse(t, cookieID(jar))), `action="/logout?everywhere=1"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "<b>eve") || strings.Contains(body, cookieID(jar)[:22]+"</code></th>") {
		t.Errorf("page shows the owner unescaped, or a session ID in the list:\n%s", body)
	}
}

// TestMaxPerOwner: with -max-per-owner 2, a third browser's login ends the
// user's least recently used session, whose line is printed, and the
// browser that had it is logged out.
func TestMaxPerOwner(t *testing.T) {
	cfg := testConfig(t, 5*time.Second, 100*time.Millisecond)
	cfg.maxPerOwner = 2
	ts := newTestServer(t, cfg)
	jars := []http.CookieJar{newJar(t), newJar(t), newJar(t)}
	for i, jar := range jars {
		if w := ts.post(jar, "/login?user=alice"); w.Code != http.StatusOK {
			t.Fatalf("login %d: %d %q", i, w.Code, w.Body.String())
		}
		ts.clock.Advance(time.Second)
		if i == 1 {
			ts.get(jars[0], "/") // the first browser is used again: the second is least recent
		}
	}
	ts.m.Sweep()
	if l := ts.lines(t); len(l) != 1 || l[0] != cookieID(jars[1]) {
		t.Fatalf("printed %q, want the line of the second browser's session", l)
	}
	if got := ts.get(jars[1], "/sessions").Body.String(); got != "You are not logged in.\n" {
		t.Errorf("the evicted browser: %q", got)
	}
	if got := ts.get(jars[0], "/sessions").Body.String(); !strings.HasPrefix(got, `"alice" has 2 sessions:`) {
		t.Errorf("the first browser: %q", got)
	}
}
