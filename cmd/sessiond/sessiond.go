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
	"sync"
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

// shutdownTimeout bounds the wait for requests in flight and for the
// sessions' callbacks when the server stops.
const shutdownTimeout = 10 * time.Second

// config is what the flags say.
type config struct {
	addr        string
	idleTimeout time.Duration
	tick        time.Duration
	maxSessions int
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
	fs.IntVar(&cfg.maxSessions, "max-sessions", 0, "refuse new sessions beyond `n` live ones (0: no limit)")
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
	log := slog.New(slog.NewTextHandler(stderr, nil))
	srv, err := newServer(cfg, nil, stdout, log)
	if errors.Is(err, sessions.ErrInvalidConfig) {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	if err != nil {
		log.Error("cannot start", "err", err)
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

// A server is the example's sessions and handlers.
type server struct {
	m   *sessions.Manager
	h   http.Handler
	out *lineWriter
	log *slog.Logger
}

// newServer returns the server cfg describes, with its manager running on
// clock (nil: the system clock). It prints expiry lines on stdout.
func newServer(cfg config, clock sessions.Clock, stdout io.Writer, log *slog.Logger) (*server, error) {
	m, err := sessions.New(sessions.Config{
		IdleTimeout: cfg.idleTimeout,
		Tick:        cfg.tick,
		MaxSessions: cfg.maxSessions,
		Clock:       clock,
	})
	if err != nil {
		return nil, err
	}
	s := &server{m: m, out: &lineWriter{w: stdout}, log: log}
	h, err := s.routes()
	if err != nil {
		m.Close(context.Background())
		return nil, err
	}
	s.h = h
	return s, nil
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
	return root, nil
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
// session (the middleware has touched it already), and registers the
// expiry callback on a session it has just started.
func (s *server) logme(w http.ResponseWriter, r *http.Request) {
	old, had := httpadapter.FromRequest(r)
	sess, err := httpadapter.GetSession(w, r)
	if err != nil {
		s.log.Warn("cannot start a session", "err", err)
		http.Error(w, "Cannot start a session now: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	if !had || old.ID() != sess.ID() {
		sess.NotifyOnExpire(s.expired)
		s.log.Info("session started", "id", sess.String())
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "Your session %s is active. It expires %v after your last visit.\n", sess, sess.IdleTimeout())
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

// expired is the callback each session gets: the example's
// `print("Session", uid, "has expired.")`.
func (s *server) expired(sess sessions.Session, why sessions.Reason) {
	s.out.println("Session " + sess.String() + " has expired.")
	s.log.Info("session ended", "id", sess.String(), "reason", why.String())
}

// serve serves on ln until ctx is done, then stops: it closes ln, finishes
// the requests in flight, closes the manager (the remaining sessions' end
// and their callbacks run), and returns the exit status.
func (s *server) serve(ctx context.Context, ln net.Listener) int {
	hs := &http.Server{
		Handler:           s.h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	s.log.Info("listening", "addr", ln.Addr().String(),
		"idle_timeout", s.m.Config().IdleTimeout, "tick", s.m.Config().Tick)
	go func() { served <- hs.Serve(ln) }()

	status := exitOK
	select {
	case err := <-served:
		s.log.Error("serving failed", "err", err)
		status = exitError
	case <-ctx.Done():
		s.log.Info("stopping")
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			s.log.Error("requests still in flight", "err", err)
			hs.Close()
			status = exitError
		}
		<-served
	}
	cctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	live := s.m.Len()
	if err := s.m.Close(cctx); err != nil {
		s.log.Error("expiry callbacks still running", "err", err)
		status = exitError
	}
	s.log.Info("stopped", "sessions_ended_at_close", live)
	return status
}

// A lineWriter writes whole lines, one at a time, from any goroutine.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) println(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	io.WriteString(l.w, line+"\n")
}
