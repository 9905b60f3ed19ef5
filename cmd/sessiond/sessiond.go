package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/rueidis"

	"github.com/sessionwheel/sessionwheel/httpadapter"
	"github.com/sessionwheel/sessionwheel/metrics"
	"github.com/sessionwheel/sessionwheel/sessions"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1 // the server could not start, or did not stop cleanly
	exitUsage = 2 // bad flags
)

// run is the whole program: it parses args (and the environment, through
// getenv), serves until ctx is done, and returns the exit status. Expiry
// lines go to stdout, logs to stderr.
func run(ctx context.Context, args []string, getenv func(string) (string, bool), stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	if cfg.version {
		fmt.Fprintln(stdout, version())
		return exitOK
	}
	log := newLogger(cfg, stderr)
	srv, err := newServer(cfg, nil, stdout, log)
	if errors.Is(err, sessions.ErrInvalidConfig) {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitError
	}
	fail := func(msg string, err error) int {
		srv.m.Close(context.Background())
		log.Error(msg, "err", err)
		return exitError
	}
	if cfg.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
		if err != nil {
			return fail("cannot load the TLS certificate", err)
		}
		srv.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if err := srv.preload(cfg.preload); err != nil {
		return fail("cannot preload sessions", err)
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fail("cannot listen", err)
	}
	var adminLn net.Listener
	if cfg.adminAddr != "" {
		if adminLn, err = net.Listen("tcp", cfg.adminAddr); err != nil {
			ln.Close()
			return fail("cannot listen on the admin address", err)
		}
	}
	return srv.serve(ctx, ln, adminLn)
}

// newLogger returns the logger cfg asks for, writing to w.
func newLogger(cfg config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.logLevel}
	if cfg.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// A server is the example's sessions and handlers.
type server struct {
	cfg      config
	m        *sessions.Manager
	h        http.Handler // the public listener's
	admin    http.Handler // the admin listener's, if -admin-addr
	tls      *tls.Config  // if -tls-cert
	out      *lineWriter
	log      *slog.Logger
	refusals throttle
	now      func() time.Time // for the refusals' throttle
	stopping atomic.Bool      // set when a signal has come: /readyz fails
	page     *template.Template
	clockNow func() time.Time // the manager's clock, for the time left
	redis    rueidis.Client   // with -redis: the sessions' Redis (redis.go)
}

// newServer returns the server cfg describes, with its manager running on
// clock (nil: the system clock). It prints expiry lines on stdout.
func newServer(cfg config, clock sessions.Clock, stdout io.Writer, log *slog.Logger) (*server, error) {
	s := &server{
		cfg:      cfg,
		out:      newLineWriter(stdout),
		log:      log,
		refusals: throttle{every: refusalLogInterval},
		now:      time.Now,
		clockNow: time.Now,
	}
	if clock != nil {
		s.clockNow = clock.Now
	}
	page, err := parsePage()
	if err != nil {
		return nil, err
	}
	s.page = page
	var store sessions.Store
	if cfg.redis != "" {
		c, st, err := openRedis(cfg, log)
		if err != nil {
			return nil, err
		}
		s.redis, store = c, st
	}
	m, err := s.newManager(sessions.Config{
		Store:       store,
		IdleTimeout: cfg.idleTimeout,
		Tick:        cfg.tick,
		MaxSessions: cfg.maxSessions,
		Evict:       cfg.evict,
		MaxPerOwner: cfg.maxPerOwner,
		Clock:       clock,
		// One callback for every session, rather than one registered with
		// Session.NotifyOnExpire on each, as the Twisted example does. A
		// session with callbacks of its own keeps them in a side table,
		// beside its fixed-size, pointer-free record: an entry and a closure
		// on the heap that the garbage collector scans, which made each
		// session cost 2.2 times as much memory. With Config.OnExpire the
		// callback is the manager's, and a session is just its record.
		OnExpire: s.expired,
	})
	if err != nil {
		s.closeRedis()
		return nil, err
	}
	s.m = m
	if err := s.routes(); err != nil {
		m.Close(context.Background())
		s.closeRedis()
		return nil, err
	}
	return s, nil
}

// preload starts n sessions, that nobody has the cookie of.
func (s *server) preload(n int) error {
	for range n {
		if _, err := s.m.Create(); err != nil {
			return err
		}
	}
	if n > 0 {
		s.log.Info("preloaded sessions", "sessions", n)
	}
	return nil
}

// routes sets s.h and s.admin.
func (s *server) routes() error {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		metrics.New(s.m, nil),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	secure := httpadapter.SecureAuto // Secure over TLS
	if s.cfg.behindTLSProxy {
		secure = httpadapter.SecureAlways
	}
	mw, err := httpadapter.Middleware(s.m, &httpadapter.Options{Secure: secure})
	if err != nil {
		return err
	}
	// Every state change is a POST: a GET may be prefetched, crawled or
	// embedded in another site's page (an <img> that logs the visitor out).
	// GET /logme stays, since it is the example's: it starts a session as
	// any page that calls getSession() does, and repeating it changes
	// nothing more. The cookie is SameSite=Lax, so another site's form
	// cannot POST with it.
	app := http.NewServeMux()
	app.HandleFunc("GET /{$}", s.home)
	app.HandleFunc("GET /logme", s.logme)
	app.HandleFunc("POST /logme", s.logme)
	app.HandleFunc("POST /logout", s.logout)
	app.HandleFunc("POST /login", s.login) // the owners demo: owners.go
	app.HandleFunc("GET /sessions", s.listSessions)

	scrape := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelError),
	})
	// Probes and scrapes neither need nor touch sessions.
	root := http.NewServeMux()
	root.HandleFunc("GET /healthz", s.healthz)
	root.HandleFunc("GET /readyz", s.readyz)
	root.Handle("/", noStore(mw(app)))
	if s.cfg.adminAddr == "" {
		root.Handle("GET /metrics", scrape)
	} else {
		admin := http.NewServeMux()
		admin.Handle("GET /metrics", scrape)
		admin.HandleFunc("GET /healthz", s.healthz)
		admin.HandleFunc("GET /readyz", s.readyz)
		// Profiles show the program's insides and cost CPU while they run:
		// they are for operators, never on the public listener. (Importing
		// net/http/pprof also registers these on http.DefaultServeMux,
		// which sessiond never serves.)
		admin.HandleFunc("/debug/pprof/", pprof.Index)
		admin.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		admin.HandleFunc("/debug/pprof/profile", pprof.Profile)
		admin.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		admin.HandleFunc("/debug/pprof/trace", pprof.Trace)
		s.admin = limitBody(admin)
	}
	s.h = limitBody(root)
	return nil
}

// noStore marks every response of next as not to be stored by any cache:
// they show a visitor's session.
func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// limitBody refuses, with 413, a request that declares a body larger than
// maxBodyBytes, and closes its connection without reading the body. Left to
// net/http, a body the handler does not read is drained before the answer
// is sent, so that the connection can serve another request: a client that
// sends it one byte a second would hold the connection, and the answer,
// until -read-timeout.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxBodyBytes {
			w.Header().Set("Connection", "close")
			// The server still reads what is left of the body before it
			// closes the connection; a read deadline in the past stops that.
			http.NewResponseController(w).SetReadDeadline(time.Now())
			http.Error(w, "Request body too large.", http.StatusRequestEntityTooLarge)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// healthz answers 200 while the process serves at all: a liveness probe.
func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}

// readyz answers 200 while the server takes new visitors, 503 once it is
// stopping: a readiness probe. The store is the manager, in memory: it
// answers as long as it is open, and it is closed only after a signal has
// made the server stop, so stopping is the one state it is not ready in.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.stopping.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "stopping\n")
		return
	}
	if s.redis != nil {
		if err := pingRedis(r.Context(), s.redis); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "redis unreachable\n")
			return
		}
	}
	io.WriteString(w, "ready\n")
}

// logme is Twisted's ExpirationLogger.render_GET: it gets the visitor's
// session (the middleware has touched it already), starting one if need be.
// The expiry line is printed by the manager's OnExpire (see newServer).
func (s *server) logme(w http.ResponseWriter, r *http.Request) {
	old, had := httpadapter.FromRequest(r)
	sess, err := httpadapter.GetSession(w, r)
	if err != nil {
		s.refuse(w, err)
		return
	}
	if !had || old.ID() != sess.ID() {
		s.log.Debug("session started", "session", sessionTag(sess.ID()))
	}
	if r.Method == http.MethodPost && wantsPage(r) {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "Your session %s is active. It expires %v after your last visit.\n", sess, sess.IdleTimeout())
}

// refuse answers a request for a new session that the manager refused
// (too many sessions, or shutting down) with 503 and a Retry-After. The
// refusals are counted in the metrics (sessionwheel_create_failures_total)
// and logged at most once per refusalLogInterval.
func (s *server) refuse(w http.ResponseWriter, err error) {
	if held, ok := s.refusals.allow(s.now()); ok {
		s.log.Warn("refusing new sessions", "err", err, "refused_since_last_log", held,
			"max_sessions", s.cfg.maxSessions)
	}
	w.Header().Set("Retry-After", strconv.Itoa(s.retryAfter()))
	http.Error(w, "Cannot start a session now: "+err.Error(), http.StatusServiceUnavailable)
}

// retryAfter is the Retry-After of a refusal, in seconds: the tick, since
// sessions that have been idle long enough end at every tick and make
// room, but at least a second and at most a minute.
func (s *server) retryAfter() int {
	return int(min(max(s.m.Config().Tick, time.Second), time.Minute).Round(time.Second) / time.Second)
}

// logout ends the visitor's session, if any, and clears the cookie. A
// browser's form is sent back to the page.
func (s *server) logout(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("everywhere") == "1" {
		s.logoutEverywhere(w, r)
		return
	}
	sess, _ := httpadapter.FromRequest(r)
	err := httpadapter.Expire(w, r)
	if wantsPage(r) {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err != nil {
		fmt.Fprintln(w, "You have no session.")
		return
	}
	fmt.Fprintf(w, "Your session %s has ended.\n", sess)
}

// expired is the manager's OnExpire: the example's
// `print("Session", uid, "has expired.")`, for every session, whatever
// ended it.
func (s *server) expired(sess sessions.Session, why sessions.Reason) {
	s.out.expired(sess.ID())
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("session ended", "session", sessionTag(sess.ID()), "reason", why.String())
	}
}
