package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// resultsDoc is what the tests read of results.json.
type resultsDoc struct {
	Machine map[string]any `json:"machine"`
	Results []struct {
		Scenario string   `json:"scenario"`
		Engine   string   `json:"engine"`
		Sessions int      `json:"sessions"`
		Metric   string   `json:"metric"`
		Value    *float64 `json:"value"`
	} `json:"results"`
	Ratios []struct {
		Scenario string  `json:"scenario"`
		Metric   string  `json:"metric"`
		Value    float64 `json:"value"`
	} `json:"ratios"`
	RedisGoals []struct {
		Goal  string  `json:"goal"`
		Value float64 `json:"sessionwheel"`
	} `json:"redis_goals"`
	Notes []string `json:"notes"`
}

func readResults(t *testing.T, dir string) resultsDoc {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc resultsDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("results.json: %v", err)
	}
	return doc
}

// TestRedisGroupQuick runs the Redis group in quick mode, at tiny sizes,
// against a real redis-server that the harness starts: every row must come
// out, for both libraries where both have it, with a finite value,
// positive but for counts, and every goal must be evaluated. It checks
// nothing about speed.
func TestRedisGroupQuick(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server is required when CI=true: %v", err)
		}
		t.Skipf("redis-server not found: %v", err)
	}
	defer goleak.VerifyNone(t,
		// scs.New starts a MemStore that cleans up once a minute for the
		// life of the process; see setupSCS for why it is not stopped.
		goleak.IgnoreTopFunction("github.com/alexedwards/scs/v2/memstore.(*MemStore).startCleanup"),
		goleak.IgnoreCurrent(),
	)
	dir := t.TempDir()
	p, err := parseFlags([]string{
		"-quick", "-progress=false", "-out", dir, "-scenarios", "redis", "-runs", "1",
		// 300 lookups over 500 sessions after a warm-up of as many: some
		// find their session touched by the warm-up within the Slack (no
		// write), most do not (a write), so both latency splits exist.
		"-redis-hot", "500", "-redis-latency-ops", "300",
		"-redis-sessions", "2000", "-redis-endings", "2000", "-redis-duration", "200ms",
	}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := run(p, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	doc := readResults(t, dir)
	got := map[[3]string]float64{}
	for _, r := range doc.Results {
		if r.Value == nil || r.Sessions <= 0 {
			t.Errorf("incomplete result %+v", r)
			continue
		}
		got[[3]string{r.Scenario, r.Engine, r.Metric}] = *r.Value
	}
	onlyUs := map[[2]string]bool{
		{scRedisEndings, mEndingsS}: true, {scRedisEndings, mDrainMs}: true,
		{scRedisLookup1, mP50UsRead}: true, {scRedisLookup1, mP50UsWrite}: true,
	}
	for _, row := range redisRows {
		engines := []string{us, engineSCS}
		if onlyUs[row] {
			engines = engines[:1]
		}
		if row[0] == scRedisLookupPar || row[0] == scRedisLookup1 {
			engines = append(engines, engineSWCache)
		}
		for _, e := range engines {
			v, ok := got[[3]string{row[0], e, row[1]}]
			// Counts may be zero: a short run within the Slack of its
			// warm-up writes nothing, and a lookup may time out on a
			// starved machine (the harness notes it). Every other
			// number is positive.
			zeroOK := row[1] == mErrors || row[1] == mWritesTouch || row[1] == mWritesSessS
			switch {
			case !ok:
				t.Errorf("no result for %s %s, %s", row[0], row[1], e)
			case math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || (v == 0 && !zeroOK):
				t.Errorf("%s %s, %s = %v, want a positive, finite number", row[0], row[1], e, v)
			}
		}
	}
	if len(doc.Ratios) == 0 {
		t.Error("results.json has no ratios")
	}
	for _, r := range doc.Ratios {
		if !(r.Value >= 0) || math.IsInf(r.Value, 0) {
			t.Errorf("ratio %s %s = %v", r.Scenario, r.Metric, r.Value)
		}
	}
	if len(doc.RedisGoals) != len(redisGoals) {
		t.Errorf("results.json evaluates %d goals, want %d", len(doc.RedisGoals), len(redisGoals))
	}
	md, err := os.ReadFile(filepath.Join(dir, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"## Redis", "redis-lookup-touch-64", "sessionwheel ÷ scs"} {
		if !strings.Contains(string(md), s) {
			t.Errorf("results.md lacks %q", s)
		}
	}
}

// TestRedisGroupWithoutServer: without redis-server the group is skipped
// with a note, and the harness still succeeds, even with nothing else to
// run.
func TestRedisGroupWithoutServer(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	p, err := parseFlags([]string{"-quick", "-progress=false", "-out", dir, "-scenarios", "redis",
		"-redis-server", filepath.Join(dir, "no-such-redis-server")}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := run(p, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "the Redis group was skipped") {
		t.Errorf("stderr does not say the group was skipped:\n%s", stderr.String())
	}
	doc := readResults(t, dir)
	if len(doc.Results) != 0 {
		t.Errorf("results without a server: %+v", doc.Results)
	}
	if len(doc.Notes) != 1 || !strings.Contains(doc.Notes[0], "skipped") {
		t.Errorf("notes = %q, want the skip", doc.Notes)
	}
}
