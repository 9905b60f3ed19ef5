// Sessiond serves Twisted Web's "Session Endings" example, ported to
// sessionwheel: each visitor who asks for /logme gets a session, kept alive
// by each later visit, and when a session ends the server prints
//
//	Session <id> has expired.
//
// on standard output, <id> being the session's 22-character ID. Nothing else
// is written to standard output (but the -version line); logs go to
// standard error.
//
// Usage:
//
//	sessiond [flags]
//
// Every flag may also be given in the environment, as SESSIOND_ and its
// name in upper case with underscores: -idle-timeout as
// SESSIOND_IDLE_TIMEOUT, -behind-tls-proxy as SESSIOND_BEHIND_TLS_PROXY=true.
// A flag on the command line wins over the environment. The flags are:
//
//	-addr address
//		listen on address (default 127.0.0.1:8080); with port 0 the
//		server picks a free port and logs the address it listens on
//	-idle-timeout duration
//		end a session after this long without a visit (default 5s, as in
//		the example)
//	-tick duration
//		granularity of the session clock (default 100ms): a session ends
//		between its idle timeout and one tick more after its last visit
//	-max-sessions n
//		refuse new sessions beyond n live ones (default 1000000, about
//		65 MB; 0: no limit), with 503 and a Retry-After
//	-evict
//		when -max-sessions are live, end the least recently used session
//		(the one that would end soonest) to make room for a new one (its
//		line is printed), instead of refusing it
//	-read-header-timeout, -read-timeout duration
//		close a connection whose request header (default 5s), or whole
//		request with its body (default 10s), takes longer than this
//	-write-timeout duration
//		give up on a response not written this long after its request's
//		header was read (default 20s)
//	-keepalive-timeout duration
//		close a keep-alive connection idle this long (default 1m)
//	-max-header-bytes n
//		answer 431 to a request whose header is larger (default 16384)
//	-max-per-owner n
//		when a login (POST /login) would give a user more than n sessions,
//		end the user's least recently used one (default 0: no limit)
//	-drain-delay duration
//		on a signal, answer /readyz with 503 but go on serving this long
//		before stopping (default 0), so a load balancer can stop sending
//		new visitors first
//	-shutdown-timeout duration
//		the most the stop may take, for requests in flight and then for the
//		remaining sessions' callbacks (default 25s)
//	-admin-addr address
//		serve /metrics and /debug/pprof/ (and the probes) on this address,
//		and not /metrics on -addr; without it, /metrics is on -addr and
//		pprof is not served at all
//	-tls-cert file, -tls-key file
//		serve HTTPS (HTTP/2 too) with this PEM certificate chain and key;
//		the session cookie is then Secure and named __Host-session
//	-behind-tls-proxy
//		a proxy in front terminates TLS: the cookie is Secure and named
//		__Host-session on plain HTTP too
//	-state file
//		keep the sessions in file across restarts (see below)
//	-save-every duration
//		with -state, save the sessions this often (default 1m; 0: only at
//		a signal): the most a crash can lose
//	-start-empty
//		with -state, if file cannot be read, move it aside (to
//		file.unreadable-<unix time>) and start with no sessions, instead of
//		refusing to start
//	-redis addresses
//		keep the sessions on Redis (host:port, comma-separated: one node or
//		a cluster's nodes), shared with every sessiond on the same Redis
//		and -redis-prefix (see below); not with -max-sessions, -evict,
//		-max-per-owner or -state
//	-redis-prefix prefix
//		with -redis, the prefix of every key (default sw)
//	-log-level level
//		debug, info (default), warn or error; per-session lines are at debug
//	-log-format format
//		text (default) or json
//	-preload n
//		start n sessions before serving, for load and shutdown tests
//	-version
//		print the version (module, commit, Go) and exit
//
// Bad flag values make it exit with status 2.
//
// It serves:
//
//	GET  /          the landing page: what to do, your session and its
//	                time left, forms to start and end it, the counts
//	GET  /logme     starts your session, or touches it: keep visiting it to
//	POST /logme     keep your session active
//	POST /logout    ends your session now (GET: 405); with ?everywhere=1,
//	                every session of your user too
//	POST /login     with user=NAME: moves your session to a new ID and logs
//	                it in as NAME (no password: a demo of owners)
//	GET  /sessions  your user's sessions, by tag, never by ID
//	GET  /healthz   200 while the process runs (liveness)
//	GET  /readyz    200 while it takes visitors, 503 once it is stopping
//	GET  /metrics   Prometheus metrics: the sessions' (sessionwheel_*), the
//	                Go runtime's and the process's
//
// The landing page is one HTML page (html/template) with no script and no
// asset from elsewhere; its forms POST, and the server answers a browser's
// form (Accept: text/html) with 303 See Other back to the page.
//
// Every state change but the example's GET /logme is a POST. Responses that
// show a session carry Cache-Control: no-store. A request body larger than
// 4 KiB is refused (413) without being read: no route takes one.
//
// The line is printed by the manager's Config.OnExpire, which runs whenever
// a session ends, for whatever reason: so it is printed on a logout too (as
// Twisted's Session.expire() runs the callbacks), for an evicted session, and
// for the sessions still alive when the server stops. Twisted's example
// registers a callback per session instead; here that would cost each
// session 2.2 times the memory. Lines are buffered, and written out at least
// every 100 ms and at exit.
//
// Logs: a session is named in them by a tag, a short hash of its ID, never
// by the ID (whoever has the ID has the session). Per-session lines
// (started, ended and why) are at debug level; refused sessions are counted
// in the metrics and logged at most once every 10 s.
//
// On SIGINT or SIGTERM it fails /readyz, serves on for -drain-delay, then
// stops accepting connections, finishes the requests in flight, ends the
// remaining sessions (printing their lines), and exits with status 0, or 1
// if -shutdown-timeout ran out. A second signal kills it at once.
//
// With -state, a restart does not log anybody out. At start the sessions
// saved in the file (sessions.Manager.Snapshot) come back with their IDs,
// values and deadlines in wall-clock terms; those whose idle timeout ran
// out while no process held them end at once, and their lines are printed.
// While serving it saves them every -save-every, and on SIGINT or SIGTERM
// it saves them instead of ending them (the manager is made with
// Config.DiscardOnClose), printing no line. Every save goes to a temporary
// file, synced and renamed over the file, so that a crash never leaves a
// half-written one. A file it cannot read (cut off, damaged, of another
// version, not a snapshot) makes it exit with status 1 and a message that
// says what is wrong where, leaving the file as it is, unless -start-empty.
// The file holds the session IDs, which are credentials: it is made
// readable by its owner only. A session that ends in the moments between
// the last save and the exit may have its line printed again by the next
// process, when it ends there at once.
//
// With -redis, several processes share the sessions (package redisstore):
// any of them serves any visitor, a logout through one is seen by all at
// once, and each ending's line is printed by exactly one of them, the one
// that claimed it (a process that dies or stalls past the 30 s lease while
// printing may see it printed again by another). Stopping a process ends no
// session: they stay on Redis for the others, and the next start. While
// Redis cannot be reached, a request with a session cookie is answered 503
// with Retry-After (the session may be alive, and no new one replaces it),
// new visitors get 503 too, and /readyz fails; endings due meanwhile happen
// once Redis is back. Three commands:
//
//	redis-server --port 6379 --save '' &
//	go run ./cmd/sessiond -redis 127.0.0.1:6379 -addr 127.0.0.1:8080 &
//	go run ./cmd/sessiond -redis 127.0.0.1:6379 -addr 127.0.0.1:8081
package main
