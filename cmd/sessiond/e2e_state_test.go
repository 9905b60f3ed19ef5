package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Timing of the restart tests' server: an idle timeout long enough for a
// stop and a start, short enough to wait for.
const restartIdle = 3 * time.Second

// savedLines counts the log lines of finished saves.
func (p *process) savedLines() int { return strings.Count(p.log(), `msg="saved sessions"`) }

// A deploy: SIGTERM saves the sessions instead of ending them (no expiry
// line), and the next process, started with the same -state, restores
// them: the same cookies still work, and each session's expiry line comes
// an idle timeout after its last visit, however the visits and the idle
// time fall on either side of the restart; none early.
func TestEndToEndRestart(t *testing.T) {
	bin := sharedSessiond(t)
	state := filepath.Join(t.TempDir(), "sessions.snap")
	args := []string{"-idle-timeout", restartIdle.String(), "-tick", e2eTick.String(), "-state", state, "-save-every", "1h"}

	p1 := startSessiond(t, bin, args...)
	back, away := p1.newVisitor(), p1.newVisitor() // one comes back after the restart, one does not
	backID, _, _ := back.logme()
	awayID, awaySent, awayReceived := away.logme()
	if status, _ := p1.stop(syscall.SIGTERM, 10*time.Second); status != exitOK {
		t.Fatalf("exit status %d after SIGTERM", status)
	}
	for l := range p1.lines {
		t.Errorf("expiry line at a stop with -state: %q", l.text)
	}
	for _, want := range []string{`msg="saving the sessions instead of ending them"`, `msg="saved sessions"`, "sessions=2"} {
		if !strings.Contains(p1.log(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if fi, err := os.Stat(state); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v, %v; want mode 0600 (it holds credentials)", fi, err)
	}

	p2 := startSessiond(t, bin, args...)
	if !strings.Contains(p2.log(), `msg="restored sessions"`) || !strings.Contains(p2.log(), "sessions=2") {
		t.Fatalf("log does not say the 2 sessions were restored:\n%s", p2.log())
	}
	back.p = p2 // the cookie jar ignores the port: the same cookie goes to the new process
	id, backSent, backReceived := back.logme()
	if id != backID {
		t.Fatalf("after the restart the cookie names session %s, want %s", id, backID)
	}
	lateBy := restartIdle + 2*e2eTick + flushInterval + e2eSlack // a tick for each process's rounding
	got := p2.expiries([]string{awayID, backID}, backReceived.Add(lateBy+5*time.Second))
	for _, c := range []struct {
		name           string
		id             string
		sent, received time.Time
	}{{"away", awayID, awaySent, awayReceived}, {"back", backID, backSent, backReceived}} {
		at := got[c.id]
		if early, late := c.sent.Add(restartIdle), c.received.Add(lateBy); at.Before(early) || at.After(late) {
			t.Errorf("%s: expired %v after the last visit, want between %v and %v", c.name, at.Sub(c.sent), restartIdle, lateBy)
		} else {
			t.Logf("%s: expired %v after the last visit (sent)", c.name, at.Sub(c.sent))
		}
	}
	if status, _ := p2.stop(syscall.SIGTERM, 10*time.Second); status != exitOK {
		t.Errorf("exit status %d after SIGTERM", status)
	}
}

// A crash (SIGKILL) loses only the sessions made after the last periodic
// save; the state file it leaves is whole.
func TestEndToEndCrash(t *testing.T) {
	bin := sharedSessiond(t)
	state := filepath.Join(t.TempDir(), "sessions.snap")
	args := []string{"-idle-timeout", "1m", "-tick", e2eTick.String(), "-state", state, "-save-every", "2s"}

	p1 := startSessiond(t, bin, args...)
	kept, lost := p1.newVisitor(), p1.newVisitor()
	keptID, _, _ := kept.logme()
	n := p1.savedLines()
	if !await(20*time.Second, func() bool { return p1.savedLines() > n }) {
		t.Fatal("no periodic save")
	}
	lostID, _, _ := lost.logme()
	n = p1.savedLines()
	p1.cmd.Process.Kill()
	<-p1.exited
	if p1.savedLines() != n {
		// A save came between the visit and the kill, a few ms: nothing to
		// lose then.
		t.Skip("a periodic save came between the last visit and the kill")
	}

	p2 := startSessiond(t, bin, args...)
	kept.p, lost.p = p2, p2
	if id, _, _ := kept.logme(); id != keptID {
		t.Errorf("session saved before the crash: the cookie names %s, want %s", id, keptID)
	}
	if id, _, _ := lost.logme(); id == lostID {
		t.Errorf("session made after the last save survived the crash")
	}
}

// A state file that cannot be read stops the start, with status 1 and a
// message that says why, and is left as it was; with -start-empty it is
// moved aside and the server starts with no sessions.
func TestEndToEndBadState(t *testing.T) {
	bin := sharedSessiond(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "sessions.snap")
	p := startSessiond(t, bin, "-state", state)
	p.newVisitor().logme()
	p.stop(syscall.SIGTERM, 10*time.Second)
	good, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	bad := good[:len(good)-3] // cut off, as by a full disk
	if err := os.WriteFile(state, bad, 0o600); err != nil {
		t.Fatal(err)
	}

	out, err := runBinary(t, bin, "-addr", "127.0.0.1:0", "-state", state)
	if code := exitCode(err); code != exitError || !strings.Contains(out, "corrupt snapshot: truncated") || !strings.Contains(out, "left as it is") {
		t.Errorf("exit status %d (%v), output:\n%s", code, err, out)
	}
	if b, _ := os.ReadFile(state); string(b) != string(bad) {
		t.Error("the unreadable state file was changed")
	}

	p = startSessiond(t, bin, "-state", state, "-start-empty")
	if !strings.Contains(p.log(), "moved the state file aside") {
		t.Errorf("log does not say the file was moved aside:\n%s", p.log())
	}
	aside, _ := filepath.Glob(state + ".unreadable-*")
	if len(aside) != 1 {
		t.Fatalf("files moved aside: %v", aside)
	}
	if b, _ := os.ReadFile(aside[0]); string(b) != string(bad) {
		t.Error("the file moved aside is not the unreadable one")
	}
	p.stop(syscall.SIGTERM, 10*time.Second)
}

// runBinary runs the binary to its end and returns what it wrote to
// stdout and stderr.
func runBinary(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}

// exitCode is the exit status that err (from running a command) reports.
func exitCode(err error) int {
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	}
	return -1
}

// A session whose idle timeout runs out while no process holds it ends as
// soon as the next process starts: its line is printed then, and the log
// counts it.
func TestEndToEndExpiredWhileDown(t *testing.T) {
	bin := sharedSessiond(t)
	state := filepath.Join(t.TempDir(), "sessions.snap")
	const idle = time.Second
	args := []string{"-idle-timeout", idle.String(), "-tick", e2eTick.String(), "-state", state}
	p1 := startSessiond(t, bin, args...)
	id, sent, _ := p1.newVisitor().logme()
	if status, _ := p1.stop(syscall.SIGTERM, 10*time.Second); status != exitOK {
		t.Fatalf("exit status %d after SIGTERM", status)
	}
	time.Sleep(time.Until(sent.Add(idle + 2*e2eTick))) // down past the session's end
	started := time.Now()
	p2 := startSessiond(t, bin, args...)
	at := p2.expiries([]string{id}, time.Now().Add(5*time.Second))[id]
	if at.Before(started) {
		t.Errorf("line at %v, before the process started", at)
	}
	if !strings.Contains(p2.log(), "ended_at_restore=1") {
		t.Errorf("log does not count the session ended at restore:\n%s", p2.log())
	}
}
