package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

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

// defaultMaxSessions bounds the sessions a flood of new visitors can make:
// a live session costs about 62 bytes, so a million take about 62 MB, which
// any machine that runs a server has, and is more than a demo needs. With
// no bound, every request without a cookie costs memory until the idle
// timeout, and a client that drops its cookies can fill the heap.
const defaultMaxSessions = 1_000_000

// maxBodyBytes is the largest request body accepted. No route reads a body
// (the page's forms post none), so a bigger one is refused at once rather
// than read, however slowly it comes.
const maxBodyBytes = 4 << 10

// refusalLogInterval is the least time between two log lines about
// refused sessions.
const refusalLogInterval = 10 * time.Second

// config is what the flags say.
type config struct {
	addr        string
	idleTimeout time.Duration
	tick        time.Duration
	maxSessions int
	evict       bool
	preload     int

	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	writeTimeout      time.Duration
	keepAliveTimeout  time.Duration
	maxHeaderBytes    int
	shutdownTimeout   time.Duration

	logLevel  slog.Level
	logFormat string
}

// errUsage is returned by parseFlags for bad flags, after it has said what
// is wrong on its output.
var errUsage = errors.New("usage")

// parseFlags parses the command line. For -h it returns flag.ErrHelp, for
// bad flags errUsage; either way it has written the message and the usage
// to stderr.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("sessiond", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: sessiond [flags]\n\n"+
			"Serves Twisted Web's \"Session Endings\" example: visit /logme to start a session\n"+
			"and keep it alive; when a session ends, \"Session <id> has expired.\" is printed.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "listen on `address`; port 0 picks a free port")
	fs.DurationVar(&cfg.idleTimeout, "idle-timeout", 5*time.Second, "end a session after this long without a visit")
	fs.DurationVar(&cfg.tick, "tick", 100*time.Millisecond, "granularity of the session clock")
	fs.IntVar(&cfg.maxSessions, "max-sessions", defaultMaxSessions, "refuse new sessions beyond `n` live ones, about 62 bytes each (0: no limit)")
	fs.BoolVar(&cfg.evict, "evict", false, "when -max-sessions are live, end the least recently used session of a few to make room for a new one, instead of refusing it")
	fs.IntVar(&cfg.preload, "preload", 0, "start `n` sessions before serving (for load and shutdown tests)")
	fs.DurationVar(&cfg.readHeaderTimeout, "read-header-timeout", 5*time.Second, "close a connection whose request header takes longer than this")
	fs.DurationVar(&cfg.readTimeout, "read-timeout", 10*time.Second, "close a connection whose request, body included, takes longer than this")
	fs.DurationVar(&cfg.writeTimeout, "write-timeout", 20*time.Second, "give up on a response not written this long after its request header was read (keep it above -read-timeout, so that a request cut off by that still gets its answer)")
	fs.DurationVar(&cfg.keepAliveTimeout, "keepalive-timeout", time.Minute, "close a keep-alive connection idle this long")
	fs.IntVar(&cfg.maxHeaderBytes, "max-header-bytes", 16<<10, "refuse requests whose header is larger than `n` bytes (431)")
	fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 25*time.Second, "on SIGTERM, wait this long at most for requests in flight and then for the remaining sessions' callbacks (exit status 1 if it runs out)")
	fs.TextVar(&cfg.logLevel, "log-level", slog.LevelInfo, "log `level`: debug (a line per session), info, warn or error")
	fs.StringVar(&cfg.logFormat, "log-format", "text", "log `format`: text or json")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, errUsage // the flag package has said why
	}
	bad := func(format string, args ...any) (config, error) {
		fmt.Fprintf(stderr, "invalid value: "+format+"\n", args...)
		fs.Usage()
		return cfg, errUsage
	}
	switch {
	case fs.NArg() > 0:
		return bad("unexpected argument %q", fs.Arg(0))
	case cfg.idleTimeout <= 0:
		return bad("-idle-timeout %v: must be positive", cfg.idleTimeout)
	case cfg.tick < sessions.MinTick:
		return bad("-tick %v: must be at least %v", cfg.tick, sessions.MinTick)
	case cfg.tick > cfg.idleTimeout:
		return bad("-tick %v: must not be more than -idle-timeout %v", cfg.tick, cfg.idleTimeout)
	case cfg.maxSessions < 0:
		return bad("-max-sessions %d: must not be negative", cfg.maxSessions)
	case cfg.preload < 0:
		return bad("-preload %d: must not be negative", cfg.preload)
	case cfg.maxSessions > 0 && cfg.preload > cfg.maxSessions:
		return bad("-preload %d: must not be more than -max-sessions %d", cfg.preload, cfg.maxSessions)
	case cfg.logFormat != "text" && cfg.logFormat != "json":
		return bad("-log-format %q: must be text or json", cfg.logFormat)
	case cfg.maxHeaderBytes <= 0:
		return bad("-max-header-bytes %d: must be positive", cfg.maxHeaderBytes)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"read-header-timeout", cfg.readHeaderTimeout},
		{"read-timeout", cfg.readTimeout},
		{"write-timeout", cfg.writeTimeout},
		{"keepalive-timeout", cfg.keepAliveTimeout},
		{"shutdown-timeout", cfg.shutdownTimeout},
	} {
		if d.v <= 0 {
			return bad("-%s %v: must be positive", d.name, d.v)
		}
	}
	return cfg, nil
}

// run is the whole program: it parses args, serves until ctx is done, and
// returns the exit status. Expiry lines go to stdout, logs to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
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
	if err := srv.preload(cfg.preload); err != nil {
		srv.m.Close(context.Background())
		log.Error("cannot preload sessions", "err", err)
		return exitError
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		srv.m.Close(context.Background())
		log.Error("cannot listen", "err", err)
		return exitError
	}
	return srv.serve(ctx, ln)
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
	h        http.Handler
	out      *lineWriter
	log      *slog.Logger
	refusals throttle
	now      func() time.Time // for the refusals' throttle
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
	}
	m, err := sessions.New(sessions.Config{
		IdleTimeout: cfg.idleTimeout,
		Tick:        cfg.tick,
		MaxSessions: cfg.maxSessions,
		Evict:       cfg.evict,
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
		return nil, err
	}
	s.m = m
	h, err := s.routes()
	if err != nil {
		m.Close(context.Background())
		return nil, err
	}
	s.h = h
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

func (s *server) routes() (http.Handler, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		metrics.New(s.m, nil),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	mw, err := httpadapter.Middleware(s.m, nil)
	if err != nil {
		return nil, err
	}
	app := http.NewServeMux()
	app.HandleFunc("GET /{$}", s.home)
	app.HandleFunc("GET /logme", s.logme)
	app.HandleFunc("GET /logout", s.logout)
	app.HandleFunc("POST /logout", s.logout)

	root := http.NewServeMux()
	// Scrapes neither need nor touch sessions.
	root.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelError),
	}))
	root.Handle("/", mw(app))
	return limitBody(root), nil
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

func (s *server) home(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, `Session Endings, the Twisted Web example, on sessionwheel.

Visit /logme to start a session. Keep visiting it, at least once every %v,
to keep your session active; when it expires, the server prints
"Session <id> has expired." on its standard output.

Visit /logout to end your session now. /metrics has the server's metrics.
`, s.m.Config().IdleTimeout)
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

func (s *server) logout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	sess, _ := httpadapter.FromRequest(r)
	if err := httpadapter.Expire(w, r); err != nil {
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

// serve serves on ln until ctx is done, then stops: it closes ln, finishes
// the requests in flight, closes the manager (the remaining sessions' end
// and their callbacks run), writes out the last expiry lines, and returns
// the exit status. The whole stop has -shutdown-timeout.
func (s *server) serve(ctx context.Context, ln net.Listener) int {
	hs := &http.Server{
		Handler:           s.h,
		ReadHeaderTimeout: s.cfg.readHeaderTimeout,
		ReadTimeout:       s.cfg.readTimeout,
		WriteTimeout:      s.cfg.writeTimeout,
		IdleTimeout:       s.cfg.keepAliveTimeout,
		MaxHeaderBytes:    s.cfg.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	stopFlushing := make(chan struct{})
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		s.out.flushEvery(flushInterval, stopFlushing)
	}()
	served := make(chan error, 1)
	s.log.Info("listening", "addr", ln.Addr().String(),
		"idle_timeout", s.m.Config().IdleTimeout, "tick", s.m.Config().Tick,
		"max_sessions", s.cfg.maxSessions, "evict", s.cfg.evict)
	go func() { served <- hs.Serve(ln) }()

	status := exitOK
	var err error
	select {
	case err = <-served:
	case <-ctx.Done():
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), s.cfg.shutdownTimeout)
	defer cancel()
	if err != nil {
		s.log.Error("serving failed", "err", err)
		status = exitError
	} else {
		s.log.Info("stopping", "sessions", s.m.Len(), "timeout", s.cfg.shutdownTimeout)
		if err := hs.Shutdown(stopCtx); err != nil {
			s.log.Error("requests still in flight", "err", err)
			hs.Close()
			status = exitError
		}
		<-served
	}
	live := s.m.Len()
	start := time.Now()
	if err := s.m.Close(stopCtx); err != nil {
		s.log.Error("expiry callbacks still running", "err", err)
		status = exitError
	}
	close(stopFlushing)
	<-flushed
	if err := s.out.flush(); err != nil {
		s.log.Error("cannot write expiry lines", "err", err)
		status = exitError
	}
	s.log.Info("stopped", "sessions_ended_at_close", live, "close_took", time.Since(start))
	return status
}
