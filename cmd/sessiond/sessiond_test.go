package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sessionwheel/sessionwheel/sessions"
	"github.com/sessionwheel/sessionwheel/sessions/sessionstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// expiredLine matches the one kind of line sessiond prints on stdout.
var expiredLine = regexp.MustCompile(`^Session ([A-Za-z0-9_-]{22}) has expired\.$`)

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string // in stderr
	}{
		{[]string{"-idle-timeout", "0"}, "-idle-timeout 0s: must be positive"},
		{[]string{"-idle-timeout", "-1s"}, "-idle-timeout -1s: must be positive"},
		{[]string{"-idle-timeout", "soon"}, `invalid value "soon" for flag -idle-timeout`},
		{[]string{"-tick", "0"}, "-tick 0s: must be at least 1ms"},
		{[]string{"-tick", "500us"}, "-tick 500µs: must be at least 1ms"},
		{[]string{"-tick", "10s"}, "-tick 10s: must not be more than -idle-timeout 5s"},
		{[]string{"-tick", "1ms", "-idle-timeout", "2000h"}, "IdleTimeout 2000h0m0s is more than 2^32 ticks of 1ms"},
		{[]string{"-max-sessions", "-1"}, "-max-sessions -1: must not be negative"},
		{[]string{"-max-sessions", "many"}, `invalid value "many" for flag -max-sessions`},
		{[]string{"-max-per-owner", "-1"}, "-max-per-owner -1: must not be negative"},
		{[]string{"-preload", "-1"}, "-preload -1: must not be negative"},
		{[]string{"-preload", "3", "-max-sessions", "2"}, "-preload 3: must not be more than -max-sessions 2"},
		{[]string{"-read-timeout", "0"}, "-read-timeout 0s: must be positive"},
		{[]string{"-read-header-timeout", "-1s"}, "-read-header-timeout -1s: must be positive"},
		{[]string{"-write-timeout", "0"}, "-write-timeout 0s: must be positive"},
		{[]string{"-keepalive-timeout", "0"}, "-keepalive-timeout 0s: must be positive"},
		{[]string{"-shutdown-timeout", "0"}, "-shutdown-timeout 0s: must be positive"},
		{[]string{"-max-header-bytes", "0"}, "-max-header-bytes 0: must be positive"},
		{[]string{"-log-level", "loud"}, `invalid value "loud" for flag -log-level`},
		{[]string{"-log-format", "xml"}, `-log-format "xml": must be text or json`},
		{[]string{"-drain-delay", "-1s"}, "-drain-delay -1s: must not be negative"},
		{[]string{"-tls-cert", "cert.pem"}, "-tls-cert and -tls-key go together"},
		{[]string{"-port", "80"}, "flag provided but not defined: -port"},
		{[]string{"serve"}, `unexpected argument "serve"`},
		{[]string{"-redis", "localhost"}, `-redis "localhost": "localhost" is not host:port`},
		{[]string{"-redis", "a:1,b"}, `-redis "a:1,b": "b" is not host:port`},
		{[]string{"-redis", "a:1", "-max-sessions", "10"}, "-max-sessions is for sessions in memory; it cannot go with -redis"},
		{[]string{"-redis", "a:1", "-evict"}, "-evict is for sessions in memory; it cannot go with -redis"},
		{[]string{"-redis", "a:1", "-max-per-owner", "2"}, "-max-per-owner is for sessions in memory; it cannot go with -redis"},
		{[]string{"-redis", "a:1", "-state", "f"}, "-state is for sessions in memory; it cannot go with -redis"},
	} {
		var stdout, stderr bytes.Buffer
		if got := run(context.Background(), tc.args, noEnv, &stdout, &stderr); got != exitUsage {
			t.Errorf("%q: exit status %d, want %d", tc.args, got, exitUsage)
		}
		if !strings.Contains(stderr.String(), tc.msg) {
			t.Errorf("%q: stderr %q does not say %q", tc.args, stderr.String(), tc.msg)
		}
		if stdout.Len() != 0 {
			t.Errorf("%q: stdout %q", tc.args, stdout.String())
		}
	}

	var stdout, stderr bytes.Buffer
	if got := run(context.Background(), []string{"-h"}, noEnv, &stdout, &stderr); got != exitOK {
		t.Errorf("-h: exit status %d", got)
	}
	if !strings.Contains(stderr.String(), "Usage: sessiond") || !strings.Contains(stderr.String(), "-max-sessions") || stdout.Len() != 0 {
		t.Errorf("-h: stdout %q, stderr %q", stdout.String(), stderr.String())
	}
}

func TestListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var stdout, stderr bytes.Buffer
	if got := run(context.Background(), []string{"-addr", ln.Addr().String()}, noEnv, &stdout, &stderr); got != exitError {
		t.Errorf("address in use: exit status %d, want %d; stderr %q", got, exitError, stderr.String())
	}
	if !strings.Contains(stderr.String(), "cannot listen") || stdout.Len() != 0 {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testServer is a server on a fake clock, closed when the test ends.
type testServer struct {
	*server
	clock  *sessionstest.Clock
	stdout *lockedBuffer
	jar    http.CookieJar
}

// testConfig is the configuration of the flags' defaults, with the given
// idle timeout and tick.
func testConfig(t *testing.T, idle, tick time.Duration) config {
	t.Helper()
	cfg, err := parseFlags([]string{"-idle-timeout", idle.String(), "-tick", tick.String()}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func newTestServer(t *testing.T, cfg config) *testServer {
	t.Helper()
	return newTestServerLog(t, cfg, io.Discard)
}

// newTestServerLog is newTestServer with the log, at debug level, on log.
func newTestServerLog(t *testing.T, cfg config, log io.Writer) *testServer {
	t.Helper()
	ts := &testServer{clock: sessionstest.NewClock(time.Time{}), stdout: &lockedBuffer{}}
	srv, err := newServer(cfg, ts.clock, ts.stdout, slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	ts.server = srv
	t.Cleanup(func() { srv.m.Close(context.Background()) })
	return ts
}

// noEnv is an empty environment.
func noEnv(string) (string, bool) { return "", false }

// get serves a GET with the cookies of jar (if not nil), stores the cookies
// the response sets in it, and returns the response.
func (ts *testServer) get(jar http.CookieJar, path string) *httptest.ResponseRecorder {
	return ts.do(http.MethodGet, jar, path)
}

// post is get for a POST with no body.
func (ts *testServer) post(jar http.CookieJar, path string) *httptest.ResponseRecorder {
	return ts.do(http.MethodPost, jar, path)
}

// do is get and post.
func (ts *testServer) do(method string, jar http.CookieJar, path string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://sessiond.test"+path, nil)
	if jar != nil {
		for _, c := range jar.Cookies(r.URL) {
			r.AddCookie(c)
		}
	}
	w := httptest.NewRecorder()
	ts.h.ServeHTTP(w, r)
	if jar != nil {
		jar.SetCookies(r.URL, w.Result().Cookies())
	}
	return w
}

func newJar(t *testing.T) http.CookieJar {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return jar
}

var sessionIn = regexp.MustCompile(`Your session ([A-Za-z0-9_-]{22}) is active`)

// logme visits /logme and returns the session ID the page names.
func (ts *testServer) logme(t *testing.T, jar http.CookieJar) string {
	t.Helper()
	w := ts.get(jar, "/logme")
	m := sessionIn.FindStringSubmatch(w.Body.String())
	if w.Code != http.StatusOK || m == nil {
		t.Fatalf("/logme: %d %q", w.Code, w.Body.String())
	}
	return m[1]
}

// lines returns the lines printed so far, each checked to be an expiry line.
func (ts *testServer) lines(t *testing.T) []string {
	t.Helper()
	if err := ts.out.flush(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, l := range strings.SplitAfter(ts.stdout.String(), "\n") {
		if l == "" {
			continue
		}
		m := expiredLine.FindStringSubmatch(strings.TrimSuffix(l, "\n"))
		if m == nil || !strings.HasSuffix(l, "\n") {
			t.Fatalf("stdout line %q", l)
		}
		ids = append(ids, m[1])
	}
	return ids
}

func TestLogme(t *testing.T) {
	const idle, tick = 5 * time.Second, 100 * time.Millisecond
	ts := newTestServer(t, testConfig(t, idle, tick))
	jar := newJar(t)
	id := ts.logme(t, jar)

	// Keep visiting it to keep the session active.
	for range 20 {
		ts.clock.Advance(idle * 8 / 10)
		ts.m.Sweep()
		if got := ts.logme(t, jar); got != id {
			t.Fatalf("session changed from %s to %s while visiting", id, got)
		}
	}
	if l := ts.lines(t); len(l) != 0 {
		t.Fatalf("printed %q while visiting", l)
	}
	ts.clock.Advance(idle)
	ts.m.Sweep()
	if l := ts.lines(t); len(l) != 0 {
		t.Fatalf("printed %q before the idle timeout", l)
	}
	ts.clock.Advance(tick)
	ts.m.Sweep()
	if l := ts.lines(t); len(l) != 1 || l[0] != id {
		t.Fatalf("printed %q, want the line for %s", l, id)
	}

	// The expired cookie, or a made-up one, gets a new session.
	if got := ts.logme(t, jar); got == id {
		t.Errorf("expired session %s came back", id)
	}
	made, madeUp := newJar(t), sessions.ID{7}.String()
	u := httptest.NewRequest(http.MethodGet, "http://sessiond.test/", nil).URL
	made.SetCookies(u, []*http.Cookie{{Name: "session", Value: madeUp}})
	if got := ts.logme(t, made); got == madeUp {
		t.Error("made-up session ID adopted")
	}
}

func TestLogout(t *testing.T) {
	ts := newTestServer(t, testConfig(t, 5*time.Second, 100*time.Millisecond))
	jar := newJar(t)
	id := ts.logme(t, jar)
	if w := ts.get(jar, "/logout"); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "POST" {
		t.Errorf("GET /logout: %d, Allow %q; want 405, POST", w.Code, w.Header().Get("Allow"))
	}
	w := ts.post(jar, "/logout")
	if want := "Your session " + id + " has ended.\n"; w.Code != http.StatusOK || w.Body.String() != want {
		t.Errorf("/logout: %d %q, want %q", w.Code, w.Body.String(), want)
	}
	ts.m.Sweep() // waits for the callbacks
	if l := ts.lines(t); len(l) != 1 || l[0] != id {
		t.Fatalf("printed %q, want the line for %s", l, id)
	}
	if w := ts.post(jar, "/logout"); w.Body.String() != "You have no session.\n" {
		t.Errorf("second /logout: %q", w.Body.String())
	}
	if got := ts.logme(t, jar); got == id {
		t.Error("session came back after logout")
	}
	if l := ts.lines(t); len(l) != 1 {
		t.Errorf("printed %q", l)
	}
}

func TestPages(t *testing.T) {
	cfg := testConfig(t, 5*time.Second, 100*time.Millisecond)
	cfg.maxSessions = 1
	ts := newTestServer(t, cfg)
	if w := ts.get(nil, "/"); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "/logme") ||
		!strings.Contains(w.Body.String(), "5s") || len(w.Result().Cookies()) != 0 {
		t.Errorf("/: %d %q", w.Code, w.Body.String())
	}
	if w := ts.get(nil, "/nothing"); w.Code != http.StatusNotFound {
		t.Errorf("/nothing: %d", w.Code)
	}
	ts.logme(t, newJar(t))
	if w := ts.get(newJar(t), "/logme"); w.Code != http.StatusServiceUnavailable ||
		!strings.Contains(w.Body.String(), sessions.ErrTooManySessions.Error()) || w.Header().Get("Retry-After") != "1" {
		t.Errorf("/logme beyond -max-sessions: %d %q %v", w.Code, w.Body.String(), w.Header())
	}
	w := ts.get(nil, "/metrics")
	for _, want := range []string{
		"sessionwheel_sessions_created_total 1\n",
		"sessionwheel_sessions_active 1\n",
		"go_goroutines ",
		"process_cpu_seconds_total ",
	} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if len(w.Result().Cookies()) != 0 {
		t.Error("/metrics sets a cookie")
	}

	// Pages that show a session are never stored by a cache; probes and
	// scrapes neither touch nor show one.
	jar := newJar(t)
	for _, req := range []struct{ method, path string }{{"GET", "/"}, {"GET", "/logme"}, {"POST", "/logme"}, {"POST", "/logout"}} {
		if w := ts.do(req.method, jar, req.path); w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s: Cache-Control %q", req.method, req.path, w.Header().Values("Cache-Control"))
		}
	}
	for path, want := range map[string]string{"/healthz": "ok\n", "/readyz": "ready\n"} {
		if w := ts.get(nil, path); w.Code != http.StatusOK || w.Body.String() != want || len(w.Result().Cookies()) != 0 {
			t.Errorf("%s: %d %q", path, w.Code, w.Body.String())
		}
	}
	ts.stopping.Store(true) // as serve does when a signal comes
	if w := ts.get(nil, "/readyz"); w.Code != http.StatusServiceUnavailable {
		t.Errorf("/readyz while stopping: %d %q", w.Code, w.Body.String())
	}
	if w := ts.get(nil, "/healthz"); w.Code != http.StatusOK {
		t.Errorf("/healthz while stopping: %d %q", w.Code, w.Body.String())
	}
}

// TestEnvironment checks that every flag can come from the environment,
// and that the command line wins.
func TestEnvironment(t *testing.T) {
	env := map[string]string{
		"SESSIOND_IDLE_TIMEOUT":      "7s",
		"SESSIOND_TICK":              "20ms",
		"SESSIOND_MAX_SESSIONS":      "12",
		"SESSIOND_EVICT":             "true",
		"SESSIOND_KEEPALIVE_TIMEOUT": "3s",
		"SESSIOND_LOG_FORMAT":        "json",
		"SESSIOND_LOG_LEVEL":         "debug",
		"SESSIOND_ADMIN_ADDR":        "127.0.0.1:9000",
		"SESSIOND_BEHIND_TLS_PROXY":  "1",
		"SESSIOND_VERSION":           "true", // not a setting: ignored
	}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := parseFlags([]string{"-tick", "50ms", "-max-sessions", "0"}, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.idleTimeout != 7*time.Second || cfg.tick != 50*time.Millisecond || cfg.maxSessions != 0 || !cfg.evict ||
		cfg.keepAliveTimeout != 3*time.Second || cfg.logFormat != "json" || cfg.logLevel != slog.LevelDebug ||
		cfg.adminAddr != "127.0.0.1:9000" || !cfg.behindTLSProxy || cfg.version {
		t.Errorf("config %+v", cfg)
	}

	var stderr bytes.Buffer
	env = map[string]string{"SESSIOND_READ_TIMEOUT": "soon"}
	if _, err := parseFlags(nil, getenv, &stderr); err != errUsage ||
		!strings.Contains(stderr.String(), `SESSIOND_READ_TIMEOUT="soon"`) {
		t.Errorf("bad value in the environment: %v, %q", err, stderr.String())
	}
	// The usage names the variables.
	stderr.Reset()
	parseFlags([]string{"-h"}, noEnv, &stderr)
	if !strings.Contains(stderr.String(), "SESSIOND_IDLE_TIMEOUT") {
		t.Errorf("usage does not mention the environment: %q", stderr.String())
	}
}

// notifyListener closes closed when it is closed.
type notifyListener struct {
	net.Listener
	once   sync.Once
	closed chan struct{}
}

func (l *notifyListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// TestServeStops checks the shutdown: once the context is done, no new
// connection is accepted, the request in flight finishes, the live
// sessions end and their lines are printed, and the status is 0.
func TestServeStops(t *testing.T) {
	ts := newTestServer(t, testConfig(t, time.Hour, time.Second))
	jar := newJar(t)
	id := ts.logme(t, jar)

	entered, release := make(chan struct{}), make(chan struct{})
	var stopped atomic.Bool
	app := ts.h
	ts.h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
			if stopped.Load() {
				t.Error("serve returned with a request in flight")
			}
			io.WriteString(w, "done")
			return
		}
		app.ServeHTTP(w, r)
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nl := &notifyListener{Listener: ln, closed: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	status := make(chan int, 1)
	go func() {
		st := ts.serve(ctx, nl, nil)
		stopped.Store(true)
		status <- st
	}()

	client := &http.Client{Timeout: 20 * time.Second}
	defer client.CloseIdleConnections()
	body := make(chan string, 1)
	go func() {
		resp, err := client.Get("http://" + ln.Addr().String() + "/slow")
		if err != nil {
			body <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body <- string(b)
	}()
	wait := func(what string, c <-chan struct{}) {
		t.Helper()
		select {
		case <-c:
		case <-time.After(20 * time.Second):
			t.Fatal("timed out waiting for " + what)
		}
	}
	wait("the request", entered)
	cancel()
	// No new connection is taken while stopping: the listener is closed.
	// (Dialing its port to check would be flaky: on a busy machine another
	// process may bind the freed port at once.)
	wait("the listener to close", nl.closed)
	close(release)
	select {
	case b := <-body:
		if b != "done" {
			t.Errorf("request in flight got %q", b)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("request in flight did not finish")
	}
	select {
	case st := <-status:
		if st != exitOK {
			t.Errorf("exit status %d", st)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not return")
	}
	if l := ts.lines(t); len(l) != 1 || l[0] != id {
		t.Errorf("printed %q at shutdown, want the line for %s", l, id)
	}
}

// TestRun runs the whole program in the test's process, on a real clock,
// and stops it by cancelling its context, as a signal would.
func TestRun(t *testing.T) {
	pr, pw := io.Pipe()
	stdout := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	status := make(chan int, 1)
	go func() {
		status <- run(ctx, []string{"-addr", "127.0.0.1:0", "-idle-timeout", "1h", "-tick", "10ms", "-log-level", "debug"}, noEnv, stdout, pw)
		pw.Close()
	}()
	addr := make(chan string, 1)
	var stderr lockedBuffer
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			stderr.Write([]byte(sc.Text() + "\n"))
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case st := <-status:
		t.Fatalf("run returned %d: %s", st, stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatal("no listening line")
	}
	client := &http.Client{Jar: newJar(t), Timeout: 20 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Get(base + "/logme")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := sessionIn.FindStringSubmatch(string(b))
	if m == nil {
		t.Fatalf("/logme: %q", b)
	}
	cancel()
	select {
	case st := <-status:
		if st != exitOK {
			t.Errorf("exit status %d: %s", st, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return")
	}
	<-logDone
	if want := "Session " + m[1] + " has expired.\n"; stdout.String() != want {
		t.Errorf("stdout %q, want %q", stdout.String(), want)
	}
	for _, want := range []string{"msg=listening", "msg=stopping", "msg=stopped", "reason=shutdown"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}

// listeningRE finds the address in the log line sessiond writes when it
// starts listening, in either log format.
var listeningRE = regexp.MustCompile(`(?:msg=listening addr=|"msg":"listening","addr":")(127\.0\.0\.1:[0-9]+)`)

func TestThrottle(t *testing.T) {
	start := time.Unix(1e9, 0)
	th := throttle{every: 10 * time.Second}
	for i, step := range []struct {
		at   time.Duration
		ok   bool
		held int
	}{
		{0, true, 0},
		{time.Second, false, 0},
		{9 * time.Second, false, 0},
		{10 * time.Second, true, 2},
		{10 * time.Second, false, 0},
		{time.Hour, true, 1},
		{time.Hour + 10*time.Second, true, 0},
	} {
		held, ok := th.allow(start.Add(step.at))
		if ok != step.ok || held != step.held {
			t.Errorf("step %d at %v: allow = %d, %v; want %d, %v", i, step.at, held, ok, step.held, step.ok)
		}
	}
}

// TestRefusalsLogged checks that a flood of refused sessions makes one log
// line per interval, saying how many were refused meanwhile, and that each
// refusal is answered with 503 and a Retry-After.
func TestRefusalsLogged(t *testing.T) {
	cfg := testConfig(t, 5*time.Second, 100*time.Millisecond)
	cfg.maxSessions = 1
	var log lockedBuffer
	ts := newTestServerLog(t, cfg, &log)
	now := time.Unix(1e9, 0)
	ts.now = func() time.Time { return now }
	ts.logme(t, newJar(t))
	refuse := func(n int) {
		for range n {
			w := ts.get(newJar(t), "/logme")
			if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
				t.Fatalf("/logme when full: %d %v", w.Code, w.Header())
			}
		}
	}
	refuse(50)
	if got := strings.Count(log.String(), "refusing new sessions"); got != 1 {
		t.Fatalf("%d log lines for 50 refusals in an instant, want 1:\n%s", got, log.String())
	}
	now = now.Add(refusalLogInterval)
	refuse(1)
	if got := strings.Count(log.String(), "refusing new sessions"); got != 2 ||
		!strings.Contains(log.String(), "refused_since_last_log=49") {
		t.Fatalf("after the interval: %d log lines, want 2 counting the 49 held back:\n%s", got, log.String())
	}
}

// TestSessionLog checks the log lines of a session's start and end: at
// debug level, with its tag and never its ID.
func TestSessionLog(t *testing.T) {
	var log lockedBuffer
	ts := newTestServerLog(t, testConfig(t, 5*time.Second, 100*time.Millisecond), &log)
	jar := newJar(t)
	text := ts.logme(t, jar)
	ts.post(jar, "/logout")
	ts.m.Sweep()
	id, err := sessions.ParseID(text)
	if err != nil {
		t.Fatal(err)
	}
	tag := sessionTag(id)
	for _, want := range []string{
		"level=DEBUG msg=\"session started\" session=" + tag,
		"level=DEBUG msg=\"session ended\" session=" + tag + " reason=explicit",
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	if strings.Contains(log.String(), text) {
		t.Errorf("log has the session's ID:\n%s", log.String())
	}
	if len(tag) != 12 || strings.Contains(text, tag) {
		t.Errorf("tag %q of %s", tag, text)
	}
}

// form posts to path as a browser's form does, with jar's cookies, and
// returns the response.
func (ts *testServer) form(jar http.CookieJar, path string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "http://sessiond.test"+path, strings.NewReader(""))
	r.Header.Set("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range jar.Cookies(r.URL) {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	ts.h.ServeHTTP(w, r)
	jar.SetCookies(r.URL, w.Result().Cookies())
	return w
}

// TestLandingPage checks the page a browser sees: the visitor's session
// and its time left, the counts, forms that work without script, and no
// asset from elsewhere.
func TestLandingPage(t *testing.T) {
	ts := newTestServer(t, testConfig(t, 5*time.Second, 100*time.Millisecond))
	jar := newJar(t)
	page := func(want ...string) string {
		t.Helper()
		w := ts.get(jar, "/")
		body := w.Body.String()
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "text/html; charset=utf-8" ||
			w.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("GET /: %d %v", w.Code, w.Header())
		}
		for _, s := range want {
			if !strings.Contains(body, s) {
				t.Errorf("page lacks %q:\n%s", s, body)
			}
		}
		for _, s := range []string{"<script", "src=", `href="http`, `href="//`, "url(", "@import"} {
			if strings.Contains(body, s) {
				t.Errorf("page has %q: it must work alone, without script", s)
			}
		}
		return body
	}

	body := page(`id="no-session"`, `<form method="post" action="/logme">`, `<td id="live">0</td>`,
		`<td id="limit">1,000,000</td>`, `href="/logme"`, `href="/metrics"`)
	if strings.Contains(body, `action="/logout"`) {
		t.Error("page offers to end a session the visitor does not have")
	}
	if len(jar.Cookies(httptest.NewRequest("GET", "http://sessiond.test/", nil).URL)) != 0 {
		t.Error("the page started a session")
	}

	// The form starts a session and comes back to the page.
	if w := ts.form(jar, "/logme"); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/" {
		t.Fatalf("form POST /logme: %d %v", w.Code, w.Header())
	}
	ts.clock.Advance(2 * time.Second) // a visit touches it: the full idle timeout is left
	body = page(`<strong id="time-left">5s</strong>`, `<td id="live">1</td>`, `<td id="started">1</td>`,
		`<form method="post" action="/logout">`)
	id := regexp.MustCompile(`<code id="session-id">([A-Za-z0-9_-]{22})</code>`).FindStringSubmatch(body)
	if id == nil {
		t.Fatalf("page shows no session ID:\n%s", body)
	}

	// The form ends it and comes back to the page.
	if w := ts.form(jar, "/logout"); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/" {
		t.Fatalf("form POST /logout: %d %v", w.Code, w.Header())
	}
	ts.m.Sweep()
	page(`id="no-session"`, `<td id="live">0</td>`, `<td id="ended-explicit">1</td>`)
	if l := ts.lines(t); len(l) != 1 || l[0] != id[1] {
		t.Errorf("printed %q, want the line for %s", l, id[1])
	}
}

func TestFormatCount(t *testing.T) {
	for n, want := range map[int]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 62500: "62,500", 1000000: "1,000,000", 12345678: "12,345,678"} {
		if got := formatCount(n); got != want {
			t.Errorf("formatCount(%d) = %q, want %q", n, got, want)
		}
	}
}
