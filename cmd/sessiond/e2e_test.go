package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sessionwheel/sessionwheel/sessions"
)

// Timing of the end-to-end test's server.
const (
	e2eIdle  = time.Second
	e2eTick  = 50 * time.Millisecond
	e2eSlack = 400 * time.Millisecond // scheduling on a busy machine
)

// process is a running sessiond binary.
type process struct {
	t      *testing.T
	cmd    *exec.Cmd
	base   string // http://127.0.0.1:port
	exited chan struct{}
	lines  chan stampedLine // from stdout, unless it goes to a sink

	mu     sync.Mutex
	stderr strings.Builder
}

type stampedLine struct {
	text string
	at   time.Time
}

// buildSessiond builds the binary into a temporary directory.
func buildSessiond(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sessiond")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startSessiond starts the binary on a free loopback port; its stdout lines
// arrive on the process's lines channel.
func startSessiond(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	return startSessiondWith(t, bin, startOptions{}, args...)
}

// startOptions are startSessiondWith's.
type startOptions struct {
	// sink, if not nil, gets each stdout line instead of the lines
	// channel, from one goroutine; the channel is closed when stdout is.
	sink func(line string)
	// env is added to the environment.
	env []string
	// scheme of the base URL: "http" if empty.
	scheme string
}

// startSessiondWith is startSessiond with options.
func startSessiondWith(t *testing.T, bin string, opts startOptions, args ...string) *process {
	t.Helper()
	sink := opts.sink
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(cmd.Environ(), opts.env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{t: t, cmd: cmd, exited: make(chan struct{}), lines: make(chan stampedLine, 100)}
	addr := make(chan string, 1)
	var pipes sync.WaitGroup
	pipes.Add(2)
	go func() {
		defer pipes.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sink != nil {
				sink(sc.Text())
				continue
			}
			p.lines <- stampedLine{sc.Text(), time.Now()}
		}
		close(p.lines)
	}()
	go func() {
		defer pipes.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	go func() {
		pipes.Wait() // Wait must not run before the pipes are read to the end
		cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("sessiond stderr:\n%s", p.log())
		}
	})
	select {
	case a := <-addr:
		scheme := cmp.Or(opts.scheme, "http")
		p.base = scheme + "://" + a
	case <-p.exited:
		t.Fatalf("sessiond exited at start: %s", p.log())
	case <-time.After(30 * time.Second):
		t.Fatal("sessiond did not say where it listens")
	}
	return p
}

// stop sends sig to the process and waits, up to timeout, for it to
// exit; it returns the exit status and how long the exit took.
func (p *process) stop(sig syscall.Signal, timeout time.Duration) (status int, took time.Duration) {
	p.t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(timeout):
		p.t.Fatalf("sessiond did not exit within %v of %v", timeout, sig)
	}
	return p.cmd.ProcessState.ExitCode(), time.Since(start)
}

func (p *process) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// visitor is a browser: an HTTP client with a cookie jar.
type visitor struct {
	p      *process
	client *http.Client
}

func (p *process) newVisitor() *visitor {
	return &visitor{p: p, client: &http.Client{Jar: newJar(p.t), Timeout: 10 * time.Second}}
}

// get fetches path and returns the body, and the times just before the
// request and just after the response.
func (v *visitor) get(path string) (body string, sent, received time.Time) {
	v.p.t.Helper()
	sent = time.Now()
	body = v.do(http.MethodGet, path)
	return body, sent, time.Now()
}

// post posts an empty form to path and returns the body.
func (v *visitor) post(path string) string {
	v.p.t.Helper()
	return v.do(http.MethodPost, path)
}

// do sends a request without a body (an empty form for a POST) and returns
// the body of its 200 response.
func (v *visitor) do(method, path string) string {
	v.p.t.Helper()
	req, err := http.NewRequest(method, v.p.base+path, nil)
	if err != nil {
		v.p.t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := v.client.Do(req)
	if err != nil {
		v.p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		v.p.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		v.p.t.Fatalf("%s %s: %s %q", method, path, resp.Status, b)
	}
	return string(b)
}

// logme visits /logme and returns the ID of the session the page names.
func (v *visitor) logme() (id string, sent, received time.Time) {
	v.p.t.Helper()
	body, sent, received := v.get("/logme")
	m := sessionIn.FindStringSubmatch(body)
	if m == nil {
		v.p.t.Fatalf("/logme: %q", body)
	}
	return m[1], sent, received
}

// expiries collects the expiry lines printed until every ID in want has
// one, or the deadline; it fails the test on any other output.
func (p *process) expiries(want []string, deadline time.Time) map[string]time.Time {
	p.t.Helper()
	got := map[string]time.Time{}
	timeout := time.NewTimer(time.Until(deadline))
	defer timeout.Stop()
	for !containsAll(got, want) {
		select {
		case l, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("stdout closed; expiries so far %v", got)
			}
			m := expiredLine.FindStringSubmatch(l.text)
			if m == nil {
				p.t.Fatalf("stdout line %q", l.text)
			}
			if _, dup := got[m[1]]; dup {
				p.t.Fatalf("session %s expired twice", m[1])
			}
			got[m[1]] = l.at
		case <-timeout.C:
			p.t.Fatalf("timed out; expired %v, want all of %q", got, want)
		}
	}
	return got
}

func containsAll(got map[string]time.Time, want []string) bool {
	for _, id := range want {
		if _, ok := got[id]; !ok {
			return false
		}
	}
	return true
}

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildSessiond(t)

	// A bad flag value: a message and status 2.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-tick", "0")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitUsage {
		t.Errorf("-tick 0: %v, want exit status %d", err, exitUsage)
	}
	if !strings.Contains(stderr.String(), "-tick 0s: must be at least 1ms") || stdout.Len() != 0 {
		t.Errorf("-tick 0: stdout %q, stderr %q", stdout.String(), stderr.String())
	}

	p := startSessiond(t, bin, "-idle-timeout", e2eIdle.String(), "-tick", e2eTick.String(), "-log-level", "debug")
	start := time.Now()
	var created []string // every session the server started
	idleEnded := map[string]bool{}

	// Distinct visitors who come once, a visitor with a made-up cookie and
	// one with a malformed cookie: each gets a new session, which expires.
	for range 3 {
		id, _, _ := p.newVisitor().logme()
		created = append(created, id)
		idleEnded[id] = true
	}
	u, _ := url.Parse(p.base)
	for _, value := range []string{sessions.ID{1, 2, 3}.String(), "not-a-session-id"} {
		v := p.newVisitor()
		v.client.Jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: value}})
		id, _, _ := v.logme()
		if id == value {
			t.Fatalf("made-up ID %s adopted", value)
		}
		created = append(created, id)
		idleEnded[id] = true
	}

	// A visitor who logs out: the line comes at once.
	quitter := p.newVisitor()
	qid, _, _ := quitter.logme()
	created = append(created, qid)
	if body := quitter.post("/logout"); !strings.Contains(body, "has ended") {
		t.Fatalf("/logout: %q", body)
	}
	p.expiries([]string{qid}, time.Now().Add(e2eIdle/2))

	// A visitor who keeps coming back every 0.4 idle timeouts, for 3 idle
	// periods, keeps the session.
	regular := p.newVisitor()
	rid, _, _ := regular.logme()
	created = append(created, rid)
	idleEnded[rid] = true

	var lastSent, lastReceived time.Time
	for range 8 {
		time.Sleep(e2eIdle * 4 / 10) // the real process runs on real time
		var got string
		got, lastSent, lastReceived = regular.logme()
		if got != rid {
			t.Fatalf("session changed from %s to %s while visiting (%v in)", rid, got, time.Since(start))
		}
	}

	// The others have expired meanwhile, the regular's has not; it expires
	// between one idle timeout and two ticks more after the last visit.
	others := slices.DeleteFunc(slices.Collect(maps.Keys(idleEnded)), func(id string) bool { return id == rid })
	got := p.expiries(others, time.Now().Add(e2eIdle))
	if _, ok := got[rid]; ok {
		t.Fatalf("regular visitor's session expired while visiting")
	}
	// The line may wait flushInterval in sessiond's buffer.
	lateBy := e2eIdle + 2*e2eTick + flushInterval + e2eSlack
	at := p.expiries([]string{rid}, lastReceived.Add(lateBy+5*time.Second))[rid]
	if early, late := lastSent.Add(e2eIdle), lastReceived.Add(lateBy); at.Before(early) || at.After(late) {
		t.Errorf("session expired %v after the last visit, want between %v and %v",
			at.Sub(lastSent), e2eIdle, lateBy)
	} else {
		t.Logf("session expired %v after the last visit (sent)", at.Sub(lastSent))
	}

	// The metrics count exactly what happened.
	body, _, _ := p.newVisitor().get("/metrics")
	for name, want := range map[string]int{
		"sessionwheel_sessions_created_total":                  len(created),
		`sessionwheel_sessions_ended_total{reason="idle"}`:     len(idleEnded),
		`sessionwheel_sessions_ended_total{reason="explicit"}`: 1,
		"sessionwheel_sessions_active":                         0,
	} {
		if got, err := metricValue(body, name); err != nil || got != float64(want) {
			t.Errorf("%s = %v (%v), want %d", name, got, err, want)
		}
	}

	// SIGTERM: the server stops, ending the session still alive (whose line
	// is printed), and exits with status 0.
	last, _, _ := p.newVisitor().logme()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.expiries([]string{last}, time.Now().Add(10*time.Second))
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("sessiond did not exit after SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d after SIGTERM", code)
	}
	if l, ok := <-p.lines; ok {
		t.Errorf("more output: %q", l.text)
	}
	// At debug level the log has a line per session, which names it by
	// its tag, never by its ID (a bearer credential).
	id, _ := sessions.ParseID(last)
	if want := "session=" + sessionTag(id) + " reason=shutdown"; !strings.Contains(p.log(), want) {
		t.Errorf("log does not say %q", want)
	}
	for _, id := range append(created, last) {
		if strings.Contains(p.log(), id) {
			t.Errorf("log has session ID %s", id)
		}
	}
	t.Logf("took %v", time.Since(start))
}

// metricValue finds the sample called series (a name with its labels, as
// written in the text exposition format) in body.
func metricValue(body, series string) (float64, error) {
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			return strconv.ParseFloat(strings.Fields(rest)[0], 64)
		}
	}
	return 0, errors.New("not found")
}
