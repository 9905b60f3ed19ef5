package main

import (
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sessionwheel/sessionwheel/httpadapter"
	"github.com/sessionwheel/sessionwheel/sessions"
)

// pageHTML is the landing page: no script, no external asset, forms that
// work in any browser.
const pageHTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Session Endings · sessiond</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 42rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; color: #222; }
code { background: #f3f3f3; padding: 0 .25em; }
form { display: inline-block; margin: 0 .5rem .5rem 0; }
button { font: inherit; padding: .3rem .9rem; }
table { border-collapse: collapse; }
th, td { text-align: left; padding: .15rem 1.5rem .15rem 0; }
td { text-align: right; font-variant-numeric: tabular-nums; }
.state { border-left: 4px solid #4a7; padding: .3rem .8rem; background: #f4faf6; }
.state.none { border-color: #aaa; background: #f7f7f7; }
</style>
</head>
<body>
<h1>Session Endings</h1>
<p>Twisted Web's example, on sessionwheel. Visit <a href="/logme">/logme</a> to start a session,
and keep visiting (any page here counts) at least once every {{.IdleTimeout}} to keep it active.
When it expires, the server prints <code>Session &lt;id&gt; has expired.</code> on its standard output.</p>

{{if .HasSession -}}
<div class="state" id="session">
<p>Your session <code id="session-id">{{.ID}}</code> is active. It ends in <strong id="time-left">{{.TimeLeft}}</strong>
(at {{.Deadline}}) unless you visit again.</p>
</div>
<form method="post" action="/logme"><button>Keep my session</button></form>
<form method="post" action="/logout"><button>End my session</button></form>
{{- else -}}
<div class="state none" id="session">
<p id="no-session">You have no session.</p>
</div>
<form method="post" action="/logme"><button>Start a session</button></form>
{{- end}}

<h2>Logged in</h2>
{{if .Owner -}}
<p>You are logged in as <strong id="owner">{{.Owner}}</strong>, on these sessions (also at <a href="/sessions">/sessions</a>):</p>
<table id="owned">
<tr><th>session</th><th>started (UTC)</th><th>last seen (UTC)</th></tr>
{{- range .Owned}}
<tr><th><code>{{.Tag}}</code>{{if .This}} (this one){{end}}</th><td>{{.Started}}</td><td>{{.LastSeen}}</td></tr>
{{- end}}
</table>
<form method="post" action="/logout?everywhere=1"><button>Log out everywhere</button></form>
{{- else -}}
<p id="not-logged-in">Log in to see your sessions on every browser, and to end them all at once. There is no password: this shows the server's index of owners.</p>
<form method="post" action="/login"><label>User <input name="user" maxlength="256" required></label> <button>Log in</button></form>
{{- end}}

<h2>Sessions on this server</h2>
<table id="counts">
<tr><th>live now</th><td id="live">{{.Live}}</td></tr>
<tr><th>limit</th><td id="limit">{{.Limit}}</td></tr>
<tr><th>started</th><td id="started">{{.Created}}</td></tr>
{{- range .Ended}}
<tr><th>ended: {{.Reason}}</th><td id="ended-{{.Reason}}">{{.Count}}</td></tr>
{{- end}}
<tr><th>refused</th><td id="refused">{{.Refused}}</td></tr>
<tr><th>users logged in</th><td id="owners">{{.Owners}}</td></tr>
</table>
<p><a href="/">Refresh</a>{{if .Metrics}} · <a href="/metrics">Metrics</a>{{end}} · <a href="/healthz">Health</a></p>
</body>
</html>
`

// pageData is what the landing page shows.
type pageData struct {
	IdleTimeout time.Duration
	HasSession  bool
	ID          string
	TimeLeft    time.Duration
	Deadline    string
	Live        int
	Limit       string
	Created     uint64
	Ended       []endedCount
	Refused     uint64
	Metrics     bool       // /metrics is on this listener
	Owner       string     // the session's owner, if logged in
	Owned       []ownedRow // the owner's sessions
	Owners      int
}

type endedCount struct {
	Reason string
	Count  uint64
}

// home serves the landing page: the visitor's session, if any (the
// middleware has touched it: this visit counts), and the server's counts.
func (s *server) home(w http.ResponseWriter, r *http.Request) {
	st := s.m.Stats()
	d := pageData{
		IdleTimeout: s.m.Config().IdleTimeout,
		Live:        st.Active,
		Limit:       "none",
		Created:     st.Created,
		Refused:     st.CreateFailedFull + st.CreateFailedClosed,
		Metrics:     s.cfg.adminAddr == "",
		Owners:      st.Owners,
	}
	d.Owner, d.Owned = s.ownedRows(r)
	if n := s.m.Config().MaxSessions; n > 0 {
		d.Limit = formatCount(n)
	}
	for _, why := range sessions.Reasons() {
		d.Ended = append(d.Ended, endedCount{why.String(), st.Ended[why]})
	}
	if sess, ok := httpadapter.FromRequest(r); ok {
		if dl := sess.Deadline(); !dl.IsZero() {
			d.HasSession = true
			d.ID = sess.String()
			d.TimeLeft = roundSecond(dl.Sub(s.clockNow()))
			d.Deadline = dl.UTC().Format("15:04:05 UTC")
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := s.page.Execute(w, d); err != nil {
		s.log.Warn("cannot write the page", "err", err)
	}
}

// roundSecond rounds the time left to whole seconds (the deadline is up
// to a tick past the idle timeout: 5.1s left is 5s), but shows a moment
// left as 1s, not 0s.
func roundSecond(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return max(d.Round(time.Second), time.Second)
}

// formatCount writes n with thousands separators.
func formatCount(n int) string {
	digits := strconv.Itoa(n)
	var s []byte
	for i, c := range []byte(digits) {
		if i > 0 && (len(digits)-i)%3 == 0 {
			s = append(s, ',')
		}
		s = append(s, c)
	}
	return string(s)
}

// wantsPage reports whether the request came from a browser's form, which
// should be sent back to the page (303 See Other) after a POST rather than
// shown a line of text.
func wantsPage(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// parsePage parses the landing page's template.
func parsePage() (*template.Template, error) {
	return template.New("page").Parse(pageHTML)
}
