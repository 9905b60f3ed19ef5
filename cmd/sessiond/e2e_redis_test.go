package main

import (
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/sessionwheel/sessionwheel/redisstore/redistest"
)

// TestEndToEndRedis runs two sessiond processes on one real redis-server
// (-redis): a session started through one is served and logged out through
// the other, each ending prints its expiry line in exactly one process,
// stopping a process ends no session, and with Redis gone a request with a
// session cookie gets 503 and /readyz fails.
func TestEndToEndRedis(t *testing.T) {
	bin := sharedSessiond(t)
	r := redistest.Server(t)
	args := []string{"-redis", r.Addr, "-idle-timeout", e2eIdle.String(), "-tick", e2eTick.String()}
	a, b := startSessiond(t, bin, args...), startSessiond(t, bin, args...)

	// One browser: its cookie (for 127.0.0.1, whatever the port) goes to both.
	va := a.newVisitor()
	defer va.client.CloseIdleConnections()
	defer http.DefaultClient.CloseIdleConnections()
	vb := &visitor{p: b, client: va.client}
	id, _, _ := va.logme()
	if got, _, _ := vb.logme(); got != id {
		t.Fatalf("through the second process: session %s, want %s (started through the first)", got, id)
	}
	vb.post("/logout")
	// The logout's ending was claimed by b: its line, and none from a.
	lines := map[string]int{}
	collect := func(p *process, want string, timeout time.Duration) bool {
		deadline := time.After(timeout)
		for {
			select {
			case l := <-p.lines:
				m := expiredLine.FindStringSubmatch(l.text)
				if m == nil {
					t.Fatalf("stdout line %q", l.text)
				}
				lines[m[1]]++
				if m[1] == want {
					return true
				}
			case <-deadline:
				return false
			}
		}
	}
	if !collect(b, id, 10*time.Second) {
		t.Fatalf("no expiry line for the logged-out session %s from the process that logged it out", id)
	}
	if got, _, _ := va.logme(); got == id {
		t.Fatalf("the first process still serves session %s after the logout through the second", id)
	}

	// An idle ending: exactly one of the two prints it.
	id2, _, _ := va.logme()
	deadline := time.Now().Add(e2eIdle + 10*time.Second)
	for lines[id2] == 0 && time.Now().Before(deadline) {
		select {
		case l := <-a.lines:
			if m := expiredLine.FindStringSubmatch(l.text); m != nil {
				lines[m[1]]++
			}
		case l := <-b.lines:
			if m := expiredLine.FindStringSubmatch(l.text); m != nil {
				lines[m[1]]++
			}
		case <-time.After(100 * time.Millisecond):
		}
	}
	if lines[id2] == 0 {
		t.Fatalf("session %s did not expire within %v of its idle timeout", id2, 10*time.Second)
	}

	// A session alive when a process stops stays on Redis for the other.
	id3, _, _ := va.logme()
	if status, _ := a.stop(syscall.SIGTERM, 30*time.Second); status != 0 {
		t.Fatalf("first process exited with %d:\n%s", status, a.log())
	}
	if got, _, _ := vb.logme(); got != id3 {
		t.Fatalf("after the first process stopped: session %s, want %s", got, id3)
	}

	// Redis gone: fail closed.
	r.Kill()
	req, _ := http.NewRequest(http.MethodGet, b.base+"/logme", nil)
	resp, err := va.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || len(resp.Header.Values("Set-Cookie")) != 0 {
		t.Fatalf("with Redis down, a request with a cookie got %s and Set-Cookie %q; want 503 and none", resp.Status, resp.Header.Values("Set-Cookie"))
	}
	resp, err = http.Get(b.base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with Redis down: %s, want 503", resp.Status)
	}
	if status, _ := b.stop(syscall.SIGTERM, 30*time.Second); status != 0 {
		t.Fatalf("second process exited with %d:\n%s", status, b.log())
	}
	for _, p := range []*process{a, b} {
		for l := range p.lines {
			if m := expiredLine.FindStringSubmatch(l.text); m != nil {
				lines[m[1]]++
			}
		}
	}
	for sid, n := range lines {
		if n != 1 {
			t.Errorf("session %s: %d expiry lines, want 1", sid, n)
		}
	}
	if lines[id3] != 0 {
		t.Errorf("session %s, alive when the processes stopped, was ended", id3)
	}
}
