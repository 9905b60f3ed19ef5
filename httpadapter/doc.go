// Package httpadapter connects net/http to a sessions.Manager: a cookie
// carries the session's ID, and every request that presents the cookie of a
// live session touches it before the handler runs.
//
// The middleware made by Middleware reads the request's session cookie
// (without allocating), looks the session up in the manager and touches it,
// and hands the handler a request whose context remembers the result.
// Handlers then call:
//
//   - FromRequest, to get the request's session, if it has one;
//   - GetSession, to get it or else start one and set its cookie (Twisted's
//     request.getSession());
//   - Renew, to move the session to a fresh ID, after a login;
//   - Expire, to end it and clear the cookie, at a logout.
//
// A plain lookup never creates a session, so bots and static files cost
// nothing; only GetSession does.
//
// # Cookies
//
// The cookie is HttpOnly, SameSite=Lax and Path=/, with no Max-Age: it lasts
// until the browser closes, and the session ends on the server after its
// idle timeout. On a request that came over TLS it is also Secure and its
// name has the "__Host-" prefix, which tells the browser to refuse a cookie
// of that name set by another host (a sibling subdomain) or for another path:
// "__Host-session" rather than "session". The middleware reads only the
// name it would write for the request, so a cookie set over plain HTTP is
// not read over TLS. See Options to change these.
//
// A cookie that does not name a live session (one that is empty, too long,
// not base64url, of the wrong length, or names a session that has ended or
// never existed) is ignored: its ID is never adopted, and GetSession starts
// a session with a fresh random ID instead. Malformed values are counted in
// the manager's Stats.LookupRejected, unknown and ended IDs in
// Stats.LookupMisses.
//
// If a request carries several cookies of the session's name, as a browser
// does when cookies of that name were set for different paths or domains,
// the first one that names a live session wins and the rest are ignored;
// at most 8 are looked up.
package httpadapter
