// Tests of the observability kit in this folder: the Prometheus alerting
// rules (checked and unit-tested by promtool, from Debian's prometheus
// package) and the Grafana dashboard (its queries parsed by promtool, its
// metrics checked against what package metrics exports).
package deploy_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/sessionwheel/sessionwheel/metrics"
	"github.com/sessionwheel/sessionwheel/sessions"
	"github.com/sessionwheel/sessionwheel/sessions/sessionstest"
)

const (
	rulesFile     = "prometheus/sessionwheel.rules.yml"
	rulesTestFile = "prometheus/sessionwheel.rules.test.yml"
	dashboardFile = "grafana/sessionwheel.json"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tool returns the path of the named program. If it is missing the test
// is skipped, unless CI=true: there `make test` has installed it, and its
// absence is a failure.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing: `make test` installs it as root (apt-get install -y %s)", name, pkg)
	}
	t.Skipf("%s is missing (Debian package %s; `make test` installs it as root)", name, pkg)
	return ""
}

// promtool runs promtool with args and returns its output; it fails the
// test if promtool fails.
func promtool(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(tool(t, "promtool", "prometheus"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func read(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var (
	alertRE     = regexp.MustCompile(`(?m)^\s*- alert: (\w+)$`)
	alertTestRE = regexp.MustCompile(`(?m)^\s*alertname: (\w+)\n\s*exp_alerts:( \[\])?$`)
	exprRE      = regexp.MustCompile(`(?ms)^\s*expr: \|\n(.*?)\n\s*(?:for|labels):`)
	metricRE    = regexp.MustCompile(`\bsessionwheel_\w+`)
)

// alerts returns the names of the alerts in the rules file.
func alerts(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, m := range alertRE.FindAllStringSubmatch(read(t, rulesFile), -1) {
		names = append(names, m[1])
	}
	if len(names) < 4 {
		t.Fatalf("%d alerts in %s", len(names), rulesFile)
	}
	return names
}

func TestAlertRules(t *testing.T) {
	want := fmt.Sprintf("SUCCESS: %d rules found", len(alerts(t)))
	if out := promtool(t, "check", "rules", rulesFile); !strings.Contains(out, want) {
		t.Errorf("promtool check rules:\n%s", out)
	}
	if out := promtool(t, "test", "rules", rulesTestFile); !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules:\n%s", out)
	}
}

// TestEveryAlertTested checks that the unit tests have, for every alert, a
// case where it fires and one where it must not.
func TestEveryAlertTested(t *testing.T) {
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, m := range alertTestRE.FindAllStringSubmatch(read(t, rulesTestFile), -1) {
		if m[2] == "" {
			fires[m[1]] = true
		} else {
			quiet[m[1]] = true
		}
	}
	for _, a := range alerts(t) {
		if !fires[a] || !quiet[a] {
			t.Errorf("alert %s: tested firing %v, tested quiet %v; want both", a, fires[a], quiet[a])
		}
	}
}

// exported returns the names of the series package metrics exports.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	m, err := sessions.New(sessions.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(t.Context())
	// A manager on a shared store has the store's metrics too.
	shared, err := sessions.New(sessions.Config{Store: opsStore{sessionstest.NewStore(nil, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close(t.Context())
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(metrics.New(m, prometheus.Labels{"manager": "memory"}), metrics.New(shared, prometheus.Labels{"manager": "shared"}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if mf.GetType().String() == "HISTOGRAM" {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[mf.GetName()+suffix] = true
			}
		}
	}
	return names
}

// opsStore is the fake shared store with one operation in its counters,
// as redisstore reports its own.
type opsStore struct{ *sessionstest.Store }

func (opsStore) Stats() sessions.StoreStats {
	return sessions.StoreStats{Ops: []sessions.StoreOp{{Name: "lookup"}}}
}

// panel is what the tests read of a dashboard panel.
type panel struct {
	ID          int    `json:"id"`
	Title       string `json:"title"`
	Description string `json:"description"`
	GridPos     struct{ X, Y, W, H int }
	Targets     []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

func dashboard(t *testing.T) []panel {
	t.Helper()
	var d struct {
		UID    string  `json:"uid"`
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal([]byte(read(t, dashboardFile)), &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard: uid %q, %d panels", d.UID, len(d.Panels))
	}
	return d.Panels
}

// expand replaces the dashboard's variables as Grafana would: every
// instance, and a rate interval of four scrapes at 15 s.
func expand(expr string) string {
	return strings.NewReplacer(`$instance`, `.*`, `$__rate_interval`, `1m`).Replace(expr)
}

// TestQueriesUseExportedMetrics checks every metric name in the alerts and
// the dashboard against what package metrics exports, so that a renamed
// metric cannot leave a silent alert or an empty panel behind.
func TestQueriesUseExportedMetrics(t *testing.T) {
	names := exported(t)
	var exprs []string
	for _, m := range exprRE.FindAllStringSubmatch(read(t, rulesFile), -1) {
		exprs = append(exprs, m[1])
	}
	if len(exprs) != len(alerts(t)) {
		t.Fatalf("found %d expressions for %d alerts", len(exprs), len(alerts(t)))
	}
	for _, p := range dashboard(t) {
		for _, target := range p.Targets {
			exprs = append(exprs, target.Expr)
		}
	}
	for _, e := range exprs {
		used := metricRE.FindAllString(e, -1)
		if len(used) == 0 {
			t.Errorf("no sessionwheel metric in %q", e)
		}
		for _, name := range used {
			if !names[name] {
				t.Errorf("%s in %q: package metrics exports no such series", name, e)
			}
		}
	}
}

// TestDashboard checks the panels: titled and described, laid out without
// overlap, each query parsed by promtool (as a recording rule).
func TestDashboard(t *testing.T) {
	panels := dashboard(t)
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	ids := map[int]bool{}
	for i, p := range panels {
		if p.Title == "" || p.Description == "" || len(p.Targets) == 0 || ids[p.ID] {
			t.Errorf("panel %d %q: needs a title, a description, a query and a unique id", p.ID, p.Title)
		}
		ids[p.ID] = true
		for _, q := range panels[:i] {
			if p.GridPos.X < q.GridPos.X+q.GridPos.W && q.GridPos.X < p.GridPos.X+p.GridPos.W &&
				p.GridPos.Y < q.GridPos.Y+q.GridPos.H && q.GridPos.Y < p.GridPos.Y+p.GridPos.H {
				t.Errorf("panels %q and %q overlap", p.Title, q.Title)
			}
		}
		for _, target := range p.Targets {
			b, _ := json.Marshal(expand(target.Expr)) // a JSON string is a YAML string
			fmt.Fprintf(&rules, "      - record: dashboard:panel%d%s\n        expr: %s\n", p.ID, target.RefID, b)
		}
	}
	file := filepath.Join(t.TempDir(), "dashboard.rules.yml")
	if err := os.WriteFile(file, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	promtool(t, "check", "rules", file)
}

// TestReadmeDescribesKit checks that the README's section on the kit names
// every alert and every panel.
func TestReadmeDescribesKit(t *testing.T) {
	readme := read(t, "../README.md")
	_, kit, ok := strings.Cut(readme, "## Observability kit")
	if !ok {
		t.Fatal("README has no section \"## Observability kit\"")
	}
	kit, _, _ = strings.Cut(kit, "\n## ")
	want := alerts(t)
	for _, p := range dashboard(t) {
		want = append(want, p.Title)
	}
	for _, name := range slices.Compact(want) {
		if !strings.Contains(kit, name) {
			t.Errorf("README's kit section does not describe %q", name)
		}
	}
}
