package deploy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
)

// lockedBuffer collects a child process's output.
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

// start starts a child process that is killed when the test ends, and
// returns its combined output.
func start(t *testing.T, name string, args ...string) *lockedBuffer {
	t.Helper()
	out := &lockedBuffer{}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, out
	if filepath.Base(name) == "prometheus" {
		cmd.Stdout = out
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%.4000s", filepath.Base(name), out.String())
		}
	})
	return out
}

// await polls cond every 100 ms until it holds or timeout passes.
func await(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// freePort returns a loopback address with a port that was free a moment
// ago, for a program that takes no port 0.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// promResult is a Prometheus HTTP API answer to an instant query.
type promResult struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Data   struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	} `json:"data"`
}

// values returns the query's sample values that are numbers (not NaN).
func (r promResult) values() []float64 {
	var vs []float64
	for _, s := range r.Data.Result {
		if text, ok := s.Value[1].(string); ok {
			if v, err := strconv.ParseFloat(text, 64); err == nil && !math.IsNaN(v) {
				vs = append(vs, v)
			}
		}
	}
	return vs
}

func getJSON(client *http.Client, u string, v any) error {
	resp, err := client.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// TestDashboardOnLivePrometheus runs sessiond under traffic, scraped every
// second by a real Prometheus that loads the alerting rules, and checks
// through Prometheus's HTTP API that the rules load and that every query
// of every dashboard panel parses and returns data.
func TestDashboardOnLivePrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs sessiond and Prometheus")
	}
	prom := tool(t, "prometheus", "prometheus")
	dir := t.TempDir()
	bin := filepath.Join(dir, "sessiond")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = "../cmd/sessiond" // a module of its own
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// sessiond: sessions that end a second after their last visit, at most
	// 20 of them, so that every panel has something to show.
	sd := start(t, bin, "-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0",
		"-idle-timeout", "1s", "-tick", "50ms", "-max-sessions", "20")
	addrRE := regexp.MustCompile(`msg=listening addr=(\S+)`)
	adminRE := regexp.MustCompile(`msg="admin listening" addr=(\S+)`)
	var public, admin string
	if !await(20*time.Second, func() bool {
		p, a := addrRE.FindStringSubmatch(sd.String()), adminRE.FindStringSubmatch(sd.String())
		if p != nil && a != nil {
			public, admin = p[1], a[1]
		}
		return admin != ""
	}) {
		t.Fatalf("sessiond did not say where it listens:\n%s", sd.String())
	}

	// Prometheus: a fresh store, the rules, sessiond's admin listener
	// scraped every second.
	rules, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: sessiond
    static_configs:
      - targets: [%q]
`, rules, admin)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	promAddr := freePort(t)
	start(t, prom, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+promAddr)
	api := "http://" + promAddr + "/api/v1/"
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	if !await(30*time.Second, func() bool {
		resp, err := client.Get("http://" + promAddr + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}) {
		t.Fatal("Prometheus not ready within 30 s")
	}

	// Traffic until the test ends: visitors who come, come back, leave or
	// are refused; cookies that name no session, or are not IDs at all.
	stop := make(chan struct{})
	trafficDone := make(chan struct{})
	defer func() { close(stop); <-trafficDone }()
	go func() {
		defer close(trafficDone)
		base := "http://" + public
		u, _ := url.Parse(base)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Jar: jar, Timeout: 5 * time.Second}
			switch i % 4 {
			case 1:
				jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: "AAAAAAAAAAAAAAAAAAAAAA"}})
			case 2:
				jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: "not-an-id"}})
			}
			for _, req := range []struct{ method, path string }{{"GET", "/logme"}, {"GET", "/logme"}, {"POST", "/logout"}} {
				if req.path == "/logout" && i%3 != 0 {
					continue
				}
				r, _ := http.NewRequest(req.method, base+req.path, nil)
				if resp, err := c.Do(r); err == nil {
					resp.Body.Close()
				}
			}
			c.CloseIdleConnections()
		}
	}()

	// The rules load and are healthy.
	var rulesAnswer struct {
		Status string
		Data   struct {
			Groups []struct {
				Rules []struct{ Name, Health, LastError string }
			}
		}
	}
	if !await(20*time.Second, func() bool {
		if err := getJSON(client, api+"rules", &rulesAnswer); err != nil || len(rulesAnswer.Data.Groups) == 0 {
			return false
		}
		for _, r := range rulesAnswer.Data.Groups[0].Rules {
			if r.Health != "ok" {
				return false
			}
		}
		return true
	}) {
		t.Errorf("rules not loaded and healthy: %+v", rulesAnswer)
	}

	// Every panel's every query answers with numbers, once a few scrapes
	// have come in. The rate interval is 10 s: ten scrapes.
	type query struct{ panel, expr string }
	var queries []query
	for _, p := range dashboard(t) {
		for _, target := range p.Targets {
			e := expand(target.Expr)
			e = regexp.MustCompile(`\[1m\]`).ReplaceAllString(e, "[10s]")
			queries = append(queries, query{p.Title, e})
		}
	}
	pending := queries
	answers := map[string]promResult{}
	await(60*time.Second, func() bool {
		var still []query
		for _, q := range pending {
			var r promResult
			err := getJSON(client, api+"query?query="+url.QueryEscape(q.expr), &r)
			answers[q.expr] = r
			if r.Status == "error" { // a bad query: waiting will not mend it
				t.Errorf("panel %q: %s: %s", q.panel, q.expr, r.Error)
				continue
			}
			if err != nil || r.Status != "success" || len(r.values()) == 0 {
				still = append(still, q)
			}
		}
		pending = still
		return len(pending) == 0
	})
	for _, q := range pending {
		r := answers[q.expr]
		t.Errorf("panel %q: %s: status %q %s, %d series, numbers %v", q.panel, q.expr, r.Status, r.Error, len(r.Data.Result), r.values())
	}
	t.Logf("%d queries of %d panels answered with data", len(queries)-len(pending), len(dashboard(t)))
}
