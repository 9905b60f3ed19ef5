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
//		refuse new sessions beyond n live ones (default 0: no limit)
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
// The line is printed by a callback registered with Session.NotifyOnExpire
// when the session starts, as in the example. Such callbacks run whenever
// the session ends, for whatever reason, so the line is printed on a
// logout too (as Twisted's Session.expire() runs them), and for the
// sessions still alive when the server stops; the log on standard error
// says why each session ended.
//
// On SIGINT or SIGTERM it stops accepting connections, finishes the
// requests in flight, ends the remaining sessions (running their
// callbacks), and exits with status 0. A second signal kills it at once.
package main
