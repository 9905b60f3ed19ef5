// Sessiond serves Twisted Web's "Session Endings" example, ported to
// sessionwheel: each visitor who asks for /logme gets a session, kept alive
// by each later visit, and when a session ends the server prints
//
//	Session <id> has expired.
//
// on standard output, <id> being the session's 22-character ID. Nothing else
// is written to standard output; logs go to standard error.
//
// Usage:
//
//	sessiond [flags]
//
// The flags are:
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
//		62 MB; 0: no limit), with 503 and a Retry-After
//	-evict
//		when -max-sessions are live, end one of the least recently used
//		sessions to make room for a new one (its line is printed), instead
//		of refusing it
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
//	-shutdown-timeout duration
//		the most a stop may take, for requests in flight and then for the
//		remaining sessions' callbacks (default 25s)
//	-log-level level
//		debug, info (default), warn or error; per-session lines are at debug
//	-log-format format
//		text (default) or json
//	-preload n
//		start n sessions before serving, for load and shutdown tests
//
// Bad flag values make it exit with status 2.
//
// It serves:
//
//	GET /         a page that says what to do
//	GET /logme    starts your session, or touches it: keep visiting it to
//	              keep your session active
//	GET /logout   ends your session now (POST works too)
//	GET /metrics  Prometheus metrics: the sessions' (sessionwheel_*), the
//	              Go runtime's and the process's
//
// A request body larger than 4 KiB is refused (413) without being read: no
// route takes one.
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
// On SIGINT or SIGTERM it stops accepting connections, finishes the
// requests in flight, ends the remaining sessions (printing their lines),
// and exits with status 0, or 1 if -shutdown-timeout ran out. A second
// signal kills it at once.
package main
