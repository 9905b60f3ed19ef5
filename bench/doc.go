// Command bench measures sessionwheel against the usual ways of expiring
// idle sessions in Go, side by side in one run on one machine, and reports
// what it found in a form a reader can check.
//
// It is a module of its own, with a replace directive to the library in
// the parent directory, so that the library's users never download plot,
// otter, scs or timingwheel. Run it from this directory:
//
//	go run .                        # 100k and 1M sessions
//	go run . -sessions 100k,1M,10M  # the full matrix (make bench)
//	go run . -quick -out /tmp/b     # a smoke run, well under a minute
//
// # Engines
//
// Four complete engines keep sessions named by sessions.ID and end each one
// after an idle timeout, calling a callback:
//
//   - sessionwheel: sessions.Manager itself, with its own sharded table of
//     pointer-free records and its timing wheels;
//   - stdtimer: one time.AfterFunc per session, Timer.Reset on each touch;
//   - timingwheel: one github.com/RussellLuo/timingwheel timer per session,
//     Stop and AfterFunc on each touch;
//   - otter: github.com/maypok86/otter/v2, a cache with a Caffeine-style
//     timer wheel, with ExpiryAccessing, an OnDeletion listener as the
//     callback, and a Get as the touch.
//
// stdtimer and timingwheel share one table (map[sessions.ID]*entry in 64
// mutex-guarded shards, chosen by the same ID byte as sessionwheel's), and
// every engine reads its IDs from crypto/rand in 4 KiB blocks as
// sessionwheel does, so that only the tracking of timeouts differs. otter
// brings its own table, as sessionwheel does. The HTTP scenario adds scs v2
// (LoadAndSave, memstore, IdleTimeout) and a bare handler.
//
// # Scenarios
//
// At each size N: create (N sessions into a fresh engine), bytes per live
// session, the wall time of a forced runtime.GC with N live, touches in
// creation and in random order from one goroutine and from GOMAXPROCS, the
// throughput of N expiries due at the same instant, and the lateness of
// expiries past each session's deadline on the real clock. Then HTTP over
// loopback with live sessions and keep-alive clients presenting random
// cookies, and the same handler chains called in process.
//
// # Redis
//
// The redis group (redis.go) starts its own redis-server (a free loopback
// port, no persistence: --save "" --appendonly no; killed when the group ends; without
// redis-server it is skipped with a note) and measures, on that one
// server in the same run, package redisstore through sessions.Manager
// against scs v2 with its redisstore, each doing per operation what its
// HTTP middleware does: lookup+touch throughput with 64 callers over 10k
// hot sessions, one caller's lookup latency, create throughput, the
// server's bytes per session holding one 100-byte value (INFO memory, at
// the default hash-max-listpack-value and at 128), Redis writes per touch
// with a 1 s slack, and claimed endings per second from one process. The
// report checks issue #10's goals against scs's numbers of the same run.
//
// Every number comes after a warm-up and is the median of several runs
// (-runs); the report divides sessionwheel's numbers by stdtimer's and by
// otter's from the same run, says in one line per engine what it does per
// operation, and checks the project's goals. Engines run one at a time,
// and each is released (runtime.GC, debug.FreeOSMemory) before the next.
//
// # Output
//
// Without -out, results.md goes to standard output. With -out DIR, the
// harness writes DIR/results.md (the tables), DIR/results.json (every
// number: {"machine": {...}, "engines": [...], "results": [{"scenario",
// "engine", "sessions", "metric", "value"}, ...], "notes": [...]}) and
// four PNG plots: touch ns, bytes per session and forced-GC time against
// the number of sessions, and the distribution of expiry lateness. A
// progress bar goes to standard error.
//
// The machine matters: run it on an otherwise idle machine, and compare
// only numbers from the same run.
package main
