package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestQuickMatrix runs the whole matrix at a tiny size, as a smoke test: it
// must finish, write results.md, a results.json that parses and has a
// number for every scenario and engine, and every plot. It checks nothing
// about speed.
func TestQuickMatrix(t *testing.T) {
	defer goleak.VerifyNone(t,
		// scs's MemStore cleans up once a minute for the life of the
		// process; see setupSCS for why it is not stopped.
		goleak.IgnoreTopFunction("github.com/alexedwards/scs/v2/memstore.(*MemStore).startCleanup"),
		goleak.IgnoreCurrent(),
	)
	dir := t.TempDir()
	p, err := parseFlags([]string{
		"-quick", "-progress=false", "-out", dir,
		// The Redis group has its own test (redis_test.go).
		"-scenarios", "steady,expiry-burst,expiry-lateness,http",
		"-sessions", "2000", "-runs", "1", "-touch-ops", "2000",
		"-expiry-idle", "50ms",
		"-http-sessions", "2000", "-http-conns", "2", "-http-duration", "100ms",
	}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	p.warmUp = 500
	var stdout, stderr bytes.Buffer
	start := time.Now()
	if err := run(p, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	t.Logf("matrix ran in %v", time.Since(start))

	doc := readResults(t, dir)
	for _, k := range []string{"cpu", "cores", "gomaxprocs", "go", "date"} {
		if doc.Machine[k] == nil {
			t.Errorf("results.json: machine has no %q", k)
		}
	}
	have := map[[2]string]bool{}
	for _, r := range doc.Results {
		if r.Value == nil || r.Metric == "" || r.Sessions <= 0 {
			t.Errorf("results.json: incomplete result %+v", r)
		}
		have[[2]string{r.Scenario, r.Engine}] = true
	}
	var want [][2]string
	for _, sc := range []string{scCreate, scMemory, scGC, scTouchSeq, scTouchRandom, scTouchSeqPar, scTouchRandomPar, scBurst, scLateness} {
		for _, k := range engineKinds {
			want = append(want, [2]string{sc, k.name})
		}
	}
	for _, sc := range []string{scHTTP, scHTTPInproc} {
		for _, v := range httpVariants {
			want = append(want, [2]string{sc, v.name})
		}
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("results.json: no result for scenario %q, engine %q", w[0], w[1])
		}
	}

	md, err := os.ReadFile(filepath.Join(dir, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"# sessionwheel benchmark results", "## Goals", "## 2,000 live sessions", "## HTTP", "GOMAXPROCS"} {
		if !strings.Contains(string(md), s) {
			t.Errorf("results.md lacks %q", s)
		}
	}
	for _, f := range plotFiles {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Error(err)
		} else if fi.Size() == 0 {
			t.Errorf("%s is empty", f)
		}
	}
}

func TestParseSizes(t *testing.T) {
	got, err := parseSizes("1M,100k,10000000,100k")
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{100_000, 1_000_000, 10_000_000}; !equalInts(got, want) {
		t.Errorf("parseSizes = %v, want %v", got, want)
	}
	for _, bad := range []string{"", "0", "-5", "1G", "k", "1.5M"} {
		if _, err := parseSizes(bad); err == nil {
			t.Errorf("parseSizes(%q) accepted", bad)
		}
	}
}

func TestQuantileAndMedian(t *testing.T) {
	s := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if q := quantile(s, 0.5); q != 5 {
		t.Errorf("p50 = %v", q)
	}
	if q := quantile(s, 0.99); q != 10 {
		t.Errorf("p99 = %v", q)
	}
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median = %v", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median = %v", m)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
