package e2e_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// TestLoginInBrowser logs in through the landing page's form (no script),
// sees the user and the session listed by tag, and logs out everywhere.
func TestLoginInBrowser(t *testing.T) {
	bctx := newBrowser(t)
	base, lines := startSessiond(t, "-idle-timeout", "1m")

	var owner, owned, id, after string
	err := chromedp.Run(bctx,
		emulation.SetScriptExecutionDisabled(true),
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible("#not-logged-in", chromedp.ByQuery),
		chromedp.SendKeys(`input[name="user"]`, "alice <3", chromedp.ByQuery),
		chromedp.Click(`form[action="/login"] button`, chromedp.ByQuery),
		chromedp.WaitVisible("#owner", chromedp.ByQuery),
		chromedp.Text("#owner", &owner, chromedp.ByQuery),
		chromedp.Text("#owned", &owned, chromedp.ByQuery),
		chromedp.Text("#session-id", &id, chromedp.ByQuery),

		chromedp.Click(`form[action="/logout?everywhere=1"] button`, chromedp.ByQuery),
		chromedp.WaitVisible("#not-logged-in", chromedp.ByQuery),
		chromedp.Text("#session", &after, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if owner != "alice <3" {
		t.Errorf("logged in as %q", owner)
	}
	if !regexp.MustCompile(`[0-9a-f]{12} \(this one\)`).MatchString(owned) || strings.Contains(owned, id) {
		t.Errorf("the sessions listed: %q (the session's ID is %s: it must not be shown)", owned, id)
	}
	if !strings.Contains(after, "You have no session.") {
		t.Errorf("after Log out everywhere: %q", after)
	}
	select {
	case l := <-lines:
		if l != "Session "+id+" has expired." {
			t.Errorf("sessiond printed %q", l)
		}
	case <-time.After(10 * time.Second):
		t.Error("no expiry line after Log out everywhere")
	}
}
