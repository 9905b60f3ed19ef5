package main

import (
	"fmt"
	"strings"
)

// redisPerReq says what each library does per operation in the Redis
// group, for the report and results.json.
var redisPerReq = map[string]string{
	us: "sessions.Manager on redisstore (rueidis, auto-pipelined on one connection; Slack 1 s; Timeout 5 s, as a shared machine stalls past the default 250 ms now and then): a request is Manager.LookupString, " +
		"one round trip: an HMGET of the session's hash decided against Redis's clock, or, when the store's hint says the deadline must move (at most once per Slack), " +
		"one lookup-and-touch script instead; values are read only when a handler asks. Create is Manager.Create (one script: EXISTS, ZADD NX, HSET, PEXPIREAT), " +
		"and with a value a Session.Set (one more script).",
	engineSWCache: "as sessionwheel, with Options.ClientCache 1 s on a rueidis client with client-side caching (its default): a lookup of a session read in the last second " +
		"is served from the client's cache, kept fresh by Redis's invalidation messages; the touch script still runs at most once per Slack.",
	engineSCS: "scs v2 SessionManager with its redisstore (redigo pool, one connection per caller) and IdleTimeout 30 min, as LoadAndSave uses it: " +
		"a request is SessionManager.Load (GET, gob decode of the deadline and every value) and, because IdleTimeout is set, Commit " +
		"(gob encode, MULTI SET PEXPIREAT EXEC). Create is Load without a token, Put of the value if any, and Commit.",
}

// redisGoalResult is one goal of the Redis group, evaluated.
type redisGoalResult struct {
	What     string  `json:"goal"`
	Scenario string  `json:"scenario"`
	Metric   string  `json:"metric"`
	Sessions int     `json:"sessions"`
	Target   string  `json:"target"`
	Value    float64 `json:"sessionwheel"`
	SCS      float64 `json:"scs,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"`
	Met      bool    `json:"met"`
}

// redisGoalResults evaluates the goals that this run measured.
func (r *report) redisGoalResults() []redisGoalResult {
	var out []redisGoalResult
	for _, g := range redisGoals {
		n, ok := r.redisSessions(g.scenario, g.metric)
		if !ok {
			continue
		}
		a, _ := r.value(g.scenario, us, n, g.metric)
		res := redisGoalResult{What: g.what, Scenario: g.scenario, Metric: g.metric, Sessions: n, Value: a}
		cmp := func(x float64) bool {
			if g.higherIsBetter {
				return x >= g.target
			}
			return x <= g.target
		}
		rel := "≤"
		if g.higherIsBetter {
			rel = "≥"
		}
		s, oks := r.value(g.scenario, engineSCS, n, g.metric)
		if oks {
			res.SCS = s
			if s != 0 {
				res.Ratio = a / s
			}
		}
		if g.absolute {
			res.Target = fmt.Sprintf("%s %s", rel, num(g.target))
			res.Met = cmp(a)
		} else {
			res.Target = fmt.Sprintf("%s %gx scs", rel, g.target)
			res.Met = oks && s != 0 && cmp(a/s)
		}
		out = append(out, res)
	}
	return out
}

// redisSessions returns the session count a Redis row was measured at.
func (r *report) redisSessions(scenario, metric string) (int, bool) {
	for _, x := range r.results {
		if x.Scenario == scenario && x.Metric == metric && x.Engine == us {
			return x.Sessions, true
		}
	}
	return 0, false
}

// redisRatios are the Redis group's ratios for results.json: every row
// with both numbers.
func (r *report) redisRatios() []ratioDoc {
	out := []ratioDoc{}
	goals := map[[2]string]redisGoalResult{}
	for _, g := range r.redisGoalResults() {
		goals[[2]string{g.Scenario, g.Metric}] = g
	}
	for _, of := range []string{us, engineSWCache} {
		for _, row := range redisRows {
			n, ok := r.redisSessions(row[0], row[1])
			if !ok {
				continue
			}
			a, oka := r.value(row[0], of, n, row[1])
			s, ok := r.value(row[0], engineSCS, n, row[1])
			if !oka || !ok || s == 0 {
				continue
			}
			d := ratioDoc{Scenario: row[0], Metric: row[1], Sessions: n, Of: of, Over: engineSCS, Value: a / s}
			if g, ok := goals[row]; ok && of == us && strings.HasSuffix(g.Target, "scs") {
				met := g.Met
				d.Goal, d.Met = g.Target, &met
			}
			out = append(out, d)
		}
	}
	return out
}

func (r *report) redisTable(w *strings.Builder) {
	rs := r.redis
	pf := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	pf("## Redis: sessionwheel's redisstore against scs's redisstore\n\n")
	pf("One redis-server %s, started by the harness (`--save '' --appendonly no`, loopback), serves both libraries in turn; it is flushed between measurements. "+
		"Sessions hold one 100-byte string value each (the endings scenario: none). The speed scenarios run with `hash-max-listpack-value 128`, the setting redisstore's documentation asks for "+
		"(the server's default here: %s); memory is measured at both. Throughput: %d callers for %s per run over %s hot sessions; latency: 1 caller, %s lookups per run; "+
		"create and memory: %s sessions per run; endings: %s sessions due at once. Medians of the runs; ratios divide sessionwheel's number by scs's from this run.\n\n",
		rs.version, rs.defaultListpack, redisCallers, rs.duration, groupDigits(rs.hot), groupDigits(rs.latOps), groupDigits(rs.sessions), groupDigits(rs.endings))
	pf("| goal | N | target | sessionwheel | scs | sessionwheel ÷ scs | met |\n|---|---:|---|---:|---:|---:|---|\n")
	for _, g := range r.redisGoalResults() {
		s, ratio := "–", "–"
		if g.SCS != 0 {
			s = num(g.SCS)
		}
		if g.Ratio != 0 {
			ratio = ratioText(g.Ratio)
		}
		pf("| %s (%s) | %s | %s | %s | %s | %s | %s |\n", g.What, g.Metric, humanCount(g.Sessions), g.Target, num(g.Value), s, ratio, yesNo(g.Met))
	}
	pf("\n| scenario | metric | N | sessionwheel | scs | sessionwheel ÷ scs | %s | %s ÷ scs |\n|---|---|---:|---:|---:|---:|---:|---:|\n", engineSWCache, engineSWCache)
	for _, row := range redisRows {
		n, ok := r.redisSessions(row[0], row[1])
		if !ok {
			continue
		}
		s, oks := r.value(row[0], engineSCS, n, row[1])
		cell := func(e string) (v, ratio string) {
			a, ok := r.value(row[0], e, n, row[1])
			if !ok {
				return "–", "–"
			}
			ratio = "–"
			if oks && s != 0 && row[1] != mErrors {
				ratio = ratioText(a / s)
			}
			return num(a), ratio
		}
		scsCell := "–"
		if oks {
			scsCell = num(s)
		}
		a, ra := cell(us)
		c, rc := cell(engineSWCache)
		pf("| %s | %s | %s | %s | %s | %s | %s | %s |\n", row[0], row[1], humanCount(n), a, scsCell, ra, c, rc)
	}
	pf("\n")
	for _, e := range []string{us, engineSCS, engineSWCache} {
		pf("- **%s**: %s\n", e, redisPerReq[e])
	}
	pf("- **redis-lookup-touch-64** (ops/s, writes/touch, errors): %d goroutines each look up and touch random sessions of the hot set, one request after another; writes/touch is sessionwheel's touch writes (Stats.TouchWrites) or scs's SET commands (INFO commandstats) over the lookups, after a warm-up that made every session's first touch. A session costs sessionwheel at most one write per Slack, so writes/touch is about the hot sessions over the lookups per second of the Slack: it falls as the rate rises; writes/session/s (at most 1 with a 1 s Slack) is the rate-free form. errors: failed lookups, not counted in ops/s.\n", redisCallers)
	pf("- **redis-lookup-touch-1** (p50-us, p99-us, writes/touch): the same from one goroutine, each request timed. One caller touches each of the hot sessions about as often as the Slack or less, so most of sessionwheel's lookups write (one lookup-and-touch script, or an HMGET and then the script when the hint was wrong; scs: Load and Commit, two round trips); p50-us-no-write and p50-us-with-write split its lookups by whether they wrote (known exactly from Stats.TouchWrites, one caller).\n")
	pf("- **redis-create / redis-create-value** (ops/s): %d goroutines create sessions into an empty server, without a value (scs: Load without a token, then Commit) or with one.\n", redisCallers)
	pf("- **redis-memory / redis-memory-listpack128** (bytes/session): INFO memory `used_memory` after creating the sessions with their value, minus before, over their number, at the server's default `hash-max-listpack-value` (%s) and at 128. sessionwheel's includes its sorted set of deadlines.\n", rs.defaultListpack)
	pf("- **redis-endings** (endings/s, drain-ms; sessionwheel only: scs's sessions vanish at their TTL, with no callback): sessions created through a store with no claimer and an idle timeout of 200 ms, all due when a Manager (Tick %s, default workers and queue) starts on them; its claimer claims, runs a no-op OnExpire and acknowledges. Throughput is their number over the time from the first callback to the last.\n\n", r.machine.Tick)
}
