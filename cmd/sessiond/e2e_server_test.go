package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessionwheel/sessionwheel/sessions"
)

// The end-to-end tests in this file drive the built binary as a client on
// the network would: over raw TCP where net/http's client would hide what
// the server does with the connection.

// sharedSessiond builds the binary, unless -short.
func sharedSessiond(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	return buildSessiond(t)
}

// dial opens a TCP connection to the process.
func (p *process) dial() net.Conn {
	p.t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(p.base, "http://"), 5*time.Second)
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { c.Close() })
	return c
}

// readResponse reads one response from c within timeout.
func readResponse(t *testing.T, c net.Conn, br *bufio.Reader, timeout time.Duration) *http.Response {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(timeout))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no response within %v: %v", timeout, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// awaitClose waits up to timeout for the server to close c, after the
// response just read, and returns how long it took.
func awaitClose(t *testing.T, c net.Conn, br *bufio.Reader, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(timeout))
	n, err := br.Read(make([]byte, 1))
	if n > 0 || !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("connection not closed within %v: read %d bytes, %v", timeout, n, err)
	}
	return time.Since(start)
}

// TestEndToEndConnections checks that no client can hold a connection
// longer than the server's timeouts say: an idle keep-alive connection, a
// large body sent slowly, a small one sent slowly, an oversized header; and
// that a slow client does not hold up the shutdown.
func TestEndToEndConnections(t *testing.T) {
	bin := sharedSessiond(t)
	const (
		keepAlive = time.Second
		read      = time.Second
		slack     = 2 * time.Second // scheduling on a busy machine
	)
	p := startSessiond(t, bin, "-keepalive-timeout", keepAlive.String(), "-read-timeout", read.String(),
		"-read-header-timeout", read.String(), "-write-timeout", (3 * read).String(), "-max-header-bytes", "1024")

	t.Run("idle keep-alive", func(t *testing.T) {
		c := p.dial()
		br := bufio.NewReader(c)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: sessiond\r\n\r\n")
		if resp := readResponse(t, c, br, 5*time.Second); resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("GET /: %s, close %v", resp.Status, resp.Close)
		}
		if took := awaitClose(t, c, br, keepAlive+slack); took < keepAlive-100*time.Millisecond {
			t.Errorf("idle connection closed after %v, before -keepalive-timeout %v", took, keepAlive)
		}
	})

	t.Run("large slow body", func(t *testing.T) {
		// The body would take a day at this pace: it is refused at once
		// and the connection closed, without waiting for it.
		c := p.dial()
		br := bufio.NewReader(c)
		start := time.Now()
		io.WriteString(c, "POST /logout HTTP/1.1\r\nHost: sessiond\r\nContent-Length: 100000\r\n\r\nx")
		resp := readResponse(t, c, br, read/2)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !resp.Close {
			t.Fatalf("POST with a 100000-byte body: %s, close %v", resp.Status, resp.Close)
		}
		awaitClose(t, c, br, read/2)
		t.Logf("answered and closed in %v", time.Since(start))
	})

	t.Run("small slow body", func(t *testing.T) {
		// A body small enough to be read is read for -read-timeout at
		// most; then the request is answered and the connection closed.
		c := p.dial()
		br := bufio.NewReader(c)
		start := time.Now()
		io.WriteString(c, "POST /logout HTTP/1.1\r\nHost: sessiond\r\nContent-Length: 100\r\n\r\nx")
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
					if _, err := io.WriteString(c, "x"); err != nil {
						return
					}
				}
			}
		}()
		resp := readResponse(t, c, br, read+slack)
		awaitClose(t, c, br, slack)
		if took := time.Since(start); !resp.Close || took > read+slack {
			t.Errorf("slow body: %s after %v, close %v", resp.Status, took, resp.Close)
		}
	})

	t.Run("large header", func(t *testing.T) {
		c := p.dial()
		br := bufio.NewReader(c)
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: sessiond\r\nCookie: session=%s\r\n\r\n", strings.Repeat("a", 8<<10))
		if resp := readResponse(t, c, br, 5*time.Second); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("8 KiB cookie with -max-header-bytes 1024: %s", resp.Status)
		}
	})

	// SIGTERM while one client trickles a small body and another a large
	// one: the server stops within the read timeout, with status 0.
	for _, length := range []int{100, 100000} {
		c := p.dial()
		fmt.Fprintf(c, "POST /logout HTTP/1.1\r\nHost: sessiond\r\nContent-Length: %d\r\n\r\nx", length)
		go func() {
			for range 20 {
				time.Sleep(200 * time.Millisecond)
				if _, err := io.WriteString(c, "x"); err != nil {
					return
				}
			}
		}()
	}
	if status, took := p.stop(syscall.SIGTERM, read+slack+5*time.Second); status != exitOK || took > read+slack {
		t.Errorf("SIGTERM with slow clients: exit status %d after %v, want 0 within %v", status, took, read+slack)
	} else {
		t.Logf("SIGTERM with slow clients: exit status 0 after %v", took)
	}
}

// TestEndToEndShutdownManySessions stops a server with a million live
// sessions: every one of them gets its line, and the server exits with
// status 0, within the shutdown timeout. (By hand, with 2,000,000 sessions,
// SIGTERM to exit took 0.8-1.4 s here: see the README.)
func TestEndToEndShutdownManySessions(t *testing.T) {
	bin := sharedSessiond(t)
	const n = 1_000_000
	seen := make(map[string]struct{}, n)
	var bad []string
	p := startSessiondWith(t, bin, startOptions{sink: func(line string) {
		// What expiredLine matches, without its cost: the test must read
		// as fast as the server writes.
		rest, ok1 := strings.CutPrefix(line, "Session ")
		id, ok2 := strings.CutSuffix(rest, " has expired.")
		if _, err := sessions.ParseID(id); !ok1 || !ok2 || err != nil {
			bad = append(bad, line)
			return
		}
		seen[id] = struct{}{}
	}}, "-preload", strconv.Itoa(n), "-max-sessions", "0", "-idle-timeout", "1h", "-shutdown-timeout", "8s")
	status, took := p.stop(syscall.SIGTERM, 30*time.Second)
	for range p.lines { // closed when stdout has been read to the end
	}
	if status != exitOK || len(seen) != n || len(bad) > 0 {
		t.Errorf("SIGTERM with %d sessions: exit status %d after %v, %d distinct lines, %d bad ones (%.100q)",
			n, status, took, len(seen), len(bad), bad)
	}
	t.Logf("SIGTERM with %d sessions: exit status %d after %v", n, status, took)
	if strings.Contains(p.log(), "level=DEBUG") || strings.Count(p.log(), "\n") > 10 {
		t.Errorf("log at info level has per-session lines:\n%.2000s", p.log())
	}
}

// TestEndToEndFlood checks a flood of new visitors against -max-sessions:
// refused with 503 and Retry-After, logged once, as JSON; and with -evict,
// served by ending the least recently used sessions.
func TestEndToEndFlood(t *testing.T) {
	bin := sharedSessiond(t)
	const limit, visitors = 3, 30

	t.Run("refuse", func(t *testing.T) {
		p := startSessiond(t, bin, "-max-sessions", strconv.Itoa(limit), "-log-format", "json")
		refused := 0
		for range visitors {
			resp, err := p.newVisitor().client.Get(p.base + "/logme")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusOK:
			case http.StatusServiceUnavailable:
				refused++
				if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
					t.Errorf("503 with Retry-After %q", resp.Header.Get("Retry-After"))
				}
			default:
				t.Errorf("/logme: %s", resp.Status)
			}
		}
		if refused != visitors-limit {
			t.Errorf("%d of %d visitors refused with -max-sessions %d", refused, visitors, limit)
		}
		body, _, _ := p.newVisitor().get("/metrics")
		if got, err := metricValue(body, `sessionwheel_create_failures_total{cause="full"}`); err != nil || got != visitors-limit {
			t.Errorf("create failures %v (%v), want %d", got, err, visitors-limit)
		}
		if status, _ := p.stop(syscall.SIGTERM, 20*time.Second); status != exitOK {
			t.Errorf("exit status %d", status)
		}
		warned := 0
		for _, line := range strings.Split(strings.TrimSpace(p.log()), "\n") {
			var rec struct{ Level, Msg string }
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Errorf("log line is not JSON: %q", line)
			}
			if rec.Msg == "refusing new sessions" {
				warned++
			}
		}
		if warned != 1 {
			t.Errorf("%d log lines about %d refusals in a burst, want 1", warned, visitors-limit)
		}
	})

	t.Run("evict", func(t *testing.T) {
		p := startSessiond(t, bin, "-max-sessions", strconv.Itoa(limit), "-evict", "-idle-timeout", "1h")
		var ids []string
		for range visitors {
			id, _, _ := p.newVisitor().logme()
			ids = append(ids, id)
		}
		// Every eviction prints the line, as every ending does.
		lines := map[string]time.Time{}
		deadline := time.Now().Add(10 * time.Second)
		for len(lines) < visitors-limit && time.Now().Before(deadline) {
			select {
			case l := <-p.lines:
				if m := expiredLine.FindStringSubmatch(l.text); m != nil {
					lines[m[1]] = l.at
				}
			case <-time.After(time.Until(deadline)):
			}
		}
		body, _, _ := p.newVisitor().get("/metrics")
		for series, want := range map[string]float64{
			`sessionwheel_sessions_ended_total{reason="evicted"}`: visitors - limit,
			`sessionwheel_create_failures_total{cause="full"}`:    0,
			"sessionwheel_sessions_active":                        limit,
		} {
			if got, err := metricValue(body, series); err != nil || got != want {
				t.Errorf("%s = %v (%v), want %v", series, got, err, want)
			}
		}
		if len(lines) != visitors-limit {
			t.Errorf("%d expiry lines for %d evictions", len(lines), visitors-limit)
		}
		for id := range lines {
			if !slices.Contains(ids, id) {
				t.Errorf("line for %s, not a visitor's session", id)
			}
		}
	})
}
