// Browser tests of cmd/sessiond: a headless Chromium (Debian's chromium
// package, never a downloaded build) driven through the DevTools protocol
// by chromedp. They live in a module of their own so that the library's
// users never download chromedp. Run them with `make test-e2e`.
package e2e_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// browser returns the path of Chromium. If it is missing the test is
// skipped, unless CI=true.
func browser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is missing: `make test-e2e` installs it as root (apt-get install -y chromium)")
	}
	t.Skip("chromium is missing (Debian package chromium; `make test-e2e` installs it as root)")
	return ""
}

// startSessiond builds and starts sessiond on a free loopback port, and
// returns its base URL and its expiry lines as they come.
func startSessiond(t *testing.T, args ...string) (base string, lines <-chan string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sessiond")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = "../cmd/sessiond" // a module of its own
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
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
	out := make(chan string, 100)
	addr := make(chan string, 1)
	var pipes sync.WaitGroup
	pipes.Add(2)
	go func() {
		defer pipes.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			out <- sc.Text()
		}
	}()
	go func() {
		defer pipes.Done()
		re := regexp.MustCompile(`msg=listening addr=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		pipes.Wait()
		cmd.Wait()
	})
	select {
	case a := <-addr:
		return "http://" + a, out
	case <-time.After(30 * time.Second):
		t.Fatal("sessiond did not say where it listens")
	}
	return "", nil
}

// newBrowser starts headless Chromium (Debian's, found by browser) with a
// profile of its own, and returns its context; the test's cleanup stops it
// and removes the profile. Chromium's helper processes may still write to
// the profile for a moment after the browser has gone, so the removal is
// tried again until it succeeds or a few seconds have passed (a cleanup
// that fails is logged, not a test failure: the test has already passed
// or failed on its own assertions).
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	chromium := browser(t)
	profile, err := os.MkdirTemp("", "sessiond-e2e-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // as root, in a container
		chromedp.Flag("headless", "new"),
		chromedp.UserDataDir(profile),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc() // kills the browser and waits for it
		cancel()
		deadline := time.Now().Add(5 * time.Second)
		for err := os.RemoveAll(profile); err != nil; err = os.RemoveAll(profile) {
			if time.Now().After(deadline) {
				t.Logf("browser profile %s left behind: %v", profile, err)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	return bctx
}

// TestLandingPageInBrowser starts, sees and ends a session through the
// landing page's buttons, in a browser whose JavaScript is disabled: the
// page must work without it. It also checks that the page's script (if it
// had any) could not read the session cookie.
func TestLandingPageInBrowser(t *testing.T) {
	bctx := newBrowser(t)
	base, lines := startSessiond(t, "-idle-timeout", "1m")

	var noSession, state, id, timeLeft, live string
	var shot []byte
	var cookies []*network.Cookie
	err := chromedp.Run(bctx,
		emulation.SetScriptExecutionDisabled(true),
		chromedp.Navigate(base+"/"),
		chromedp.Text("#no-session", &noSession, chromedp.ByQuery),

		chromedp.Click(`form[action="/logme"] button`, chromedp.ByQuery),
		chromedp.WaitVisible("#session-id", chromedp.ByQuery),
		chromedp.Text("#session-id", &id, chromedp.ByQuery),
		chromedp.Text("#time-left", &timeLeft, chromedp.ByQuery),
		chromedp.Text("#live", &live, chromedp.ByQuery),
		chromedp.FullScreenshot(&shot, 100), // 100: PNG,
		chromedp.ActionFunc(func(ctx context.Context) error {
			var err error
			cookies, err = network.GetCookies().Do(ctx)
			return err
		}),

		chromedp.Click(`form[action="/logout"] button`, chromedp.ByQuery),
		chromedp.WaitVisible("#no-session", chromedp.ByQuery),
		chromedp.Text("#session", &state, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("SESSIOND_SCREENSHOTS"); dir != "" {
		os.WriteFile(filepath.Join(dir, "landing.png"), shot, 0o644)
	}
	if noSession != "You have no session." {
		t.Errorf("first visit: %q", noSession)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`).MatchString(id) || timeLeft != "1m0s" || live != "1" {
		t.Errorf("after Start a session: id %q, time left %q, live %q", id, timeLeft, live)
	}
	if len(cookies) != 1 || cookies[0].Value != id || !cookies[0].HTTPOnly || cookies[0].SameSite != network.CookieSameSiteLax {
		t.Errorf("cookies %+v, want one HttpOnly SameSite=Lax cookie with the ID", cookies)
	}
	if !strings.Contains(state, "You have no session.") {
		t.Errorf("after End my session: %q", state)
	}
	select {
	case l := <-lines:
		if l != "Session "+id+" has expired." {
			t.Errorf("sessiond printed %q", l)
		}
	case <-time.After(10 * time.Second):
		t.Error("no expiry line after End my session")
	}
}
