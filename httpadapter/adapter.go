package httpadapter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sessionwheel/sessionwheel/sessions"
)

// Errors reported by the package. Compare with errors.Is. GetSession and
// Renew also pass on the manager's errors, such as sessions.ErrTooManySessions
// and sessions.ErrClosed.
var (
	// ErrInvalidOptions wraps every error Middleware returns for a bad
	// argument.
	ErrInvalidOptions = errors.New("httpadapter: invalid options")
	// ErrNoMiddleware: the request did not pass through the middleware, so
	// it has no place for a session.
	ErrNoMiddleware = errors.New("httpadapter: request did not pass through the session middleware")
	// ErrNoSession: the request has no live session to renew or expire.
	ErrNoSession = errors.New("httpadapter: request has no session")
)

// DefaultCookieName is the session cookie's name when Options.CookieName is
// empty.
const DefaultCookieName = "session"

// HostPrefix is prepended to the cookie's name when the cookie is Secure,
// has Path "/" and no Domain, unless Options.NoHostPrefix is set. Browsers
// accept a cookie with this prefix only from a secure origin, with those
// attributes, so no other host or path can set or shadow it.
const HostPrefix = "__Host-"

// maxCandidates bounds the cookies of the session's name that one request
// may have looked up.
const maxCandidates = 8

// A SecureMode says when the session cookie has the Secure attribute.
type SecureMode uint8

const (
	// SecureAuto, the default, makes the cookie Secure, with the "__Host-"
	// prefix, on requests that came over TLS (Request.TLS is not nil), and
	// neither on others.
	SecureAuto SecureMode = iota
	// SecureAlways makes every cookie Secure, with the "__Host-" prefix: for
	// a server behind a proxy that terminates TLS.
	SecureAlways
	// SecureNever makes no cookie Secure: for development over plain HTTP
	// only.
	SecureNever
)

// Options configure the session cookie. A nil *Options, like the zero
// Options, gives the defaults described in the package documentation.
type Options struct {
	// CookieName is the cookie's name, before any "__Host-" prefix; empty
	// means DefaultCookieName. It must be a valid cookie name and must not
	// itself start with "__Host-" or "__Secure-" (in any case).
	CookieName string
	// Path is the cookie's Path attribute; empty means "/". A cookie with
	// another path gets no "__Host-" prefix.
	Path string
	// Domain is the cookie's Domain attribute. Empty, the default, makes a
	// host-only cookie, the safer choice; a cookie with a domain gets no
	// "__Host-" prefix.
	Domain string
	// SameSite is the cookie's SameSite attribute; zero means
	// http.SameSiteLaxMode. http.SameSiteDefaultMode leaves the attribute
	// out; http.SameSiteNoneMode needs a Secure cookie, which browsers
	// check.
	SameSite http.SameSite
	// MaxAge, if positive, makes the cookie persistent: the browser keeps it
	// that long (rounded up to whole seconds) after it is set, by GetSession
	// or Renew, even across restarts. Zero, the default, makes a cookie that
	// lasts until the browser closes. Either way the session itself ends
	// after its idle timeout without a request.
	MaxAge time.Duration
	// Secure says when the cookie is Secure; see SecureMode.
	Secure SecureMode
	// NoHostPrefix keeps the "__Host-" prefix off Secure cookies, for a
	// cookie whose name must not change.
	NoHostPrefix bool
}

// adapter is what Middleware builds: the manager and the cookie's settings.
type adapter struct {
	m *sessions.Manager
	// names are the cookie's name on a plain and on a secure request.
	names    [2]string
	path     string
	domain   string
	sameSite http.SameSite
	maxAge   int
	secure   SecureMode
}

// Middleware returns a middleware that gives each request the session its
// cookie names in m, if the session is alive, touching it before the handler
// runs. The handler reads the session with FromRequest, and starts one with
// GetSession. When m is on a shared store (sessions.Config.Store) that
// cannot be reached, a request with a session cookie is answered 503
// Service Unavailable with Retry-After: 1, and the handler does not run:
// the session may be alive, and a new one must not replace it. A nil opts means the defaults. Middleware returns an error
// wrapping ErrInvalidOptions if m is nil or opts has a bad value.
func Middleware(m *sessions.Manager, opts *Options) (func(http.Handler) http.Handler, error) {
	a, err := newAdapter(m, opts)
	if err != nil {
		return nil, err
	}
	return a.wrap, nil
}

func newAdapter(m *sessions.Manager, opts *Options) (*adapter, error) {
	bad := func(format string, args ...any) (*adapter, error) {
		return nil, fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
	}
	if m == nil {
		return bad("nil manager")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.CookieName == "" {
		o.CookieName = DefaultCookieName
	}
	if o.Path == "" {
		o.Path = "/"
	}
	if o.SameSite == 0 {
		o.SameSite = http.SameSiteLaxMode
	}
	if lower := strings.ToLower(o.CookieName); strings.HasPrefix(lower, "__host-") || strings.HasPrefix(lower, "__secure-") {
		return bad("cookie name %q has a prefix of its own", o.CookieName)
	}
	if err := (&http.Cookie{Name: o.CookieName, Domain: o.Domain}).Valid(); err != nil {
		return bad("%v", err)
	}
	if o.Path[0] != '/' || strings.ContainsFunc(o.Path, func(r rune) bool { return r < 0x20 || r >= 0x7f || r == ';' }) {
		return bad("cookie path %q", o.Path)
	}
	switch o.SameSite {
	case http.SameSiteDefaultMode, http.SameSiteLaxMode, http.SameSiteStrictMode:
	case http.SameSiteNoneMode:
		if o.Secure == SecureNever {
			return bad("SameSite=None needs a Secure cookie")
		}
	default:
		return bad("SameSite %d", o.SameSite)
	}
	if o.Secure > SecureNever {
		return bad("SecureMode %d", o.Secure)
	}
	if o.MaxAge < 0 {
		return bad("negative MaxAge %v", o.MaxAge)
	}
	a := &adapter{
		m:        m,
		names:    [2]string{o.CookieName, o.CookieName},
		path:     o.Path,
		domain:   o.Domain,
		sameSite: o.SameSite,
		maxAge:   int((o.MaxAge + time.Second - 1) / time.Second),
		secure:   o.Secure,
	}
	if !o.NoHostPrefix && o.Path == "/" && o.Domain == "" {
		a.names[1] = HostPrefix + o.CookieName
	}
	return a, nil
}

// isSecure reports whether the cookie of the session of r is Secure.
func (a *adapter) isSecure(r *http.Request) bool {
	switch a.secure {
	case SecureAlways:
		return true
	case SecureNever:
		return false
	}
	return r.TLS != nil
}

// name returns the cookie's name for a secure or plain request.
func (a *adapter) name(secure bool) string {
	if secure {
		return a.names[1]
	}
	return a.names[0]
}

// scope is the one allocation the middleware makes per request: the
// request handed to the next handler and the context it carries, which
// holds the request's session state.
type scope struct {
	req http.Request
	st  state
}

// state is a request's session state. It is the request's context too: it
// wraps the parent context and answers Value(stateKey{}) with itself, so
// that storing it costs no allocation beyond the scope.
type state struct {
	context.Context
	a         *adapter
	s         sessions.Session
	ok        bool // s is the request's session
	secure    bool // the request's cookie is Secure
	presented bool // the request carried a cookie of the session's name
}

type stateKey struct{}

// Value returns the state for stateKey and defers to the parent otherwise.
func (st *state) Value(key any) any {
	if key == (stateKey{}) {
		return st
	}
	return st.Context.Value(key)
}

// String describes the context, as the context package's own types do.
func (st *state) String() string { return fmt.Sprint(st.Context) + ".WithSession" }

func stateOf(r *http.Request) *state {
	st, _ := r.Context().Value(stateKey{}).(*state)
	return st
}

func (a *adapter) wrap(next http.Handler) http.Handler { return &handler{a, next} }

// handler is the middleware around one handler. It is a type rather than a
// closure so that the compiler inlines WithContext into ServeHTTP.
type handler struct {
	a    *adapter
	next http.Handler
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a := h.a
	sc := &scope{}
	st := &sc.st
	st.Context = r.Context()
	st.a = a
	st.secure = a.isSecure(r)
	var err error
	st.s, st.ok, st.presented, err = a.find(r.Header, a.name(st.secure))
	if err != nil {
		// The store could not say whether the cookie names a live session:
		// fail closed, and never start a new session over one that may be.
		w.Header().Set("Retry-After", "1")
		http.Error(w, "session store unavailable", http.StatusServiceUnavailable)
		return
	}
	// WithContext is inlined and its copy does not escape: the new request
	// lives in the scope, not in an allocation of its own.
	sc.req = *r.WithContext(st)
	h.next.ServeHTTP(w, &sc.req)
}

// find returns the first live session named by a cookie called name in h,
// touching it, and reports whether any cookie of that name was present. It
// fails only when a shared store could not be asked (sessions.ErrUnavailable).
// It does not allocate.
func (a *adapter) find(h http.Header, name string) (s sessions.Session, ok, presented bool, err error) {
	n := 0
	for _, line := range h["Cookie"] {
		for {
			v, rest, found := nextCookie(line, name)
			if !found {
				break
			}
			line = rest
			s, err = a.m.LookupString(v)
			if err == nil {
				return s, true, true, nil
			}
			if errors.Is(err, sessions.ErrUnavailable) {
				return sessions.Session{}, false, true, err
			}
			if n++; n == maxCandidates {
				break
			}
		}
		if n == maxCandidates {
			break
		}
	}
	return sessions.Session{}, false, n > 0, nil
}

// FromRequest returns the session of the request: the live session its
// cookie named when it reached the middleware, or the one GetSession or
// Renew has since given it. ok is false if it has none, or if it did not
// pass through the middleware. The session may end while the handler runs
// (another request may expire it); its methods then report
// sessions.ErrEnded.
//
// FromRequest, GetSession, Renew and Expire share the request's session
// state: like the ResponseWriter, they are for the handler's goroutine, or
// for goroutines it synchronizes with.
func FromRequest(r *http.Request) (s sessions.Session, ok bool) {
	if st := stateOf(r); st != nil && st.ok {
		return st.s, true
	}
	return sessions.Session{}, false
}

// GetSession returns the session of the request, as FromRequest does,
// unless it has none or it has ended; then it starts a new session and sets
// its cookie on w, so it must be called before the response's header is
// written. It is Twisted's request.getSession(). A response that sets the
// cookie also gets `Cache-Control: no-cache="Set-Cookie"` and `Vary: Cookie`,
// so that no shared cache hands the cookie to another visitor.
//
// It returns ErrNoMiddleware if the request did not pass through the
// middleware, and the manager's error if it cannot start a session
// (sessions.ErrTooManySessions, sessions.ErrClosed) or, on a shared store,
// cannot tell whether the request's session is alive (an error wrapping
// sessions.ErrUnavailable: it never starts a new session then).
func GetSession(w http.ResponseWriter, r *http.Request) (sessions.Session, error) {
	st := stateOf(r)
	if st == nil {
		return sessions.Session{}, ErrNoMiddleware
	}
	if st.ok {
		err := st.s.Touch()
		if err == nil {
			return st.s, nil
		}
		if !errors.Is(err, sessions.ErrEnded) {
			return sessions.Session{}, err // the store is away: no new session over this one
		}
	}
	st.ok = false
	s, err := st.a.m.Create()
	if err != nil {
		return sessions.Session{}, err
	}
	st.s, st.ok = s, true
	st.a.setCookie(w, st.secure, s.String(), false)
	return s, nil
}

// Renew moves the request's session to a fresh ID, keeping its values and
// callbacks, and sets the new cookie on w: what a handler does after a
// login, so that an ID planted before it (session fixation) is worth
// nothing. The old ID no longer names a session. It returns ErrNoSession if
// the request has no live session, ErrNoMiddleware if it did not pass
// through the middleware, and the manager's error if it cannot renew.
func Renew(w http.ResponseWriter, r *http.Request) (sessions.Session, error) {
	st := stateOf(r)
	if st == nil {
		return sessions.Session{}, ErrNoMiddleware
	}
	if !st.ok {
		return sessions.Session{}, ErrNoSession
	}
	s, err := st.a.m.Renew(st.s.ID())
	if errors.Is(err, sessions.ErrEnded) {
		st.ok, st.s = false, sessions.Session{}
		return sessions.Session{}, ErrNoSession
	}
	if err != nil {
		return sessions.Session{}, err
	}
	st.s = s
	st.a.setCookie(w, st.secure, s.String(), false)
	return s, nil
}

// Expire ends the request's session, with reason sessions.Explicit (a
// logout): its expiry callbacks run. It clears the cookie on w if the
// request carried one or was given one. Afterwards the request has no
// session, and GetSession would start a new one. Expire returns ErrNoSession
// if the request had no live session, ErrNoMiddleware if it did not pass
// through the middleware.
func Expire(w http.ResponseWriter, r *http.Request) error {
	st := stateOf(r)
	if st == nil {
		return ErrNoMiddleware
	}
	had := st.ok && st.s.Expire() == nil
	if st.ok || st.presented {
		st.a.setCookie(w, st.secure, "", true)
	}
	st.ok, st.s = false, sessions.Session{}
	if !had {
		return ErrNoSession
	}
	return nil
}

// setCookie sets the session cookie with the given value on w, replacing
// one set earlier in the same response, or a cookie that clears it.
func (a *adapter) setCookie(w http.ResponseWriter, secure bool, value string, clear bool) {
	c := http.Cookie{
		Name:     a.name(secure),
		Value:    value,
		Path:     a.path,
		Domain:   a.domain,
		MaxAge:   a.maxAge,
		Secure:   secure,
		HttpOnly: true,
		SameSite: a.sameSite,
	}
	if clear {
		c.MaxAge = -1
		c.Expires = time.Unix(0, 0)
	}
	h := w.Header()
	prefix := c.Name + "="
	lines := h["Set-Cookie"]
	kept := lines[:0]
	for _, l := range lines {
		if !strings.HasPrefix(l, prefix) {
			kept = append(kept, l)
		}
	}
	h["Set-Cookie"] = append(kept, c.String())
	addOnce(h, "Cache-Control", `no-cache="Set-Cookie"`)
	addOnce(h, "Vary", "Cookie")
}

// addOnce adds value to the header key unless it is there already.
func addOnce(h http.Header, key, value string) {
	for _, v := range h[key] {
		if v == value {
			return
		}
	}
	h[key] = append(h[key], value)
}
