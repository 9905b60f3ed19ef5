package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/sessionwheel/sessionwheel/sessions"
)

// defaultMaxSessions bounds the sessions a flood of new visitors can make:
// a live session costs about 65 bytes, so a million take about 65 MB, which
// any machine that runs a server has, and is more than a demo needs. With
// no bound, every request without a cookie costs memory until the idle
// timeout, and a client that drops its cookies can fill the heap.
const defaultMaxSessions = 1_000_000

// maxBodyBytes is the largest request body accepted. Only /login reads a
// body (a user name), so a bigger one is refused at once rather than read,
// however slowly it comes.
const maxBodyBytes = 4 << 10

// refusalLogInterval is the least time between two log lines about
// refused sessions.
const refusalLogInterval = 10 * time.Second

// envPrefix starts the name of the environment variable of each flag:
// -idle-timeout is also SESSIOND_IDLE_TIMEOUT.
const envPrefix = "SESSIOND_"

// config is what the flags say.
type config struct {
	addr        string
	idleTimeout time.Duration
	tick        time.Duration
	maxSessions int
	evict       bool
	maxPerOwner int // sessions per logged-in user (owners.go); 0: no limit
	preload     int

	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	writeTimeout      time.Duration
	keepAliveTimeout  time.Duration
	maxHeaderBytes    int
	shutdownTimeout   time.Duration
	drainDelay        time.Duration

	adminAddr      string
	tlsCert        string
	tlsKey         string
	behindTLSProxy bool

	stateFile  string
	saveEvery  time.Duration
	startEmpty bool

	redis       string // Redis addresses, comma-separated: sessions shared on Redis (redis.go)
	redisPrefix string

	logLevel  slog.Level
	logFormat string

	version bool
}

// errUsage is returned by parseFlags for bad flags, after it has said what
// is wrong on its output.
var errUsage = errors.New("usage")

// envName returns the environment variable of the flag called name.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// parseFlags parses the command line, taking each flag it does not set
// from the environment, as getenv (os.LookupEnv) reports it. For -h it
// returns flag.ErrHelp, for bad flags errUsage; either way it has written
// the message and the usage to stderr.
func parseFlags(args []string, getenv func(string) (string, bool), stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("sessiond", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: sessiond [flags]\n\n"+
			"Serves Twisted Web's \"Session Endings\" example: visit /logme to start a session\n"+
			"and keep it alive; when a session ends, \"Session <id> has expired.\" is printed.\n\n"+
			"Each flag may also be set in the environment: -idle-timeout as "+envName("idle-timeout")+",\n"+
			"and so on. A flag on the command line wins.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "listen on `address`; port 0 picks a free port")
	fs.DurationVar(&cfg.idleTimeout, "idle-timeout", 5*time.Second, "end a session after this long without a visit")
	fs.DurationVar(&cfg.tick, "tick", 100*time.Millisecond, "granularity of the session clock")
	fs.IntVar(&cfg.maxSessions, "max-sessions", defaultMaxSessions, "refuse new sessions beyond `n` live ones, about 65 bytes each (0: no limit)")
	fs.BoolVar(&cfg.evict, "evict", false, "when -max-sessions are live, end the least recently used session (the one that would end soonest) to make room for a new one, instead of refusing it")
	fs.IntVar(&cfg.preload, "preload", 0, "start `n` sessions before serving (for load and shutdown tests)")
	fs.DurationVar(&cfg.readHeaderTimeout, "read-header-timeout", 5*time.Second, "close a connection whose request header takes longer than this")
	fs.DurationVar(&cfg.readTimeout, "read-timeout", 10*time.Second, "close a connection whose request, body included, takes longer than this")
	fs.DurationVar(&cfg.writeTimeout, "write-timeout", 20*time.Second, "give up on a response not written this long after its request header was read (keep it above -read-timeout, so that a request cut off by that still gets its answer)")
	fs.DurationVar(&cfg.keepAliveTimeout, "keepalive-timeout", time.Minute, "close a keep-alive connection idle this long")
	fs.IntVar(&cfg.maxHeaderBytes, "max-header-bytes", 16<<10, "refuse requests whose header is larger than `n` bytes (431)")
	fs.IntVar(&cfg.maxPerOwner, "max-per-owner", 0, "end a user's least recently used session when a login would give the user more than `n` (0: no limit)")
	fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 25*time.Second, "on SIGTERM, wait this long at most for requests in flight and then for the remaining sessions' callbacks (exit status 1 if it runs out)")
	fs.DurationVar(&cfg.drainDelay, "drain-delay", 0, "on SIGTERM, answer /readyz with 503 and go on serving this long before stopping, so that a load balancer stops sending traffic first")
	fs.StringVar(&cfg.adminAddr, "admin-addr", "", "serve /metrics, /debug/pprof/, /healthz and /readyz on this `address` instead of the public one (pprof is served only here)")
	fs.StringVar(&cfg.tlsCert, "tls-cert", "", "serve HTTPS with the certificate (chain) in this PEM `file`; needs -tls-key")
	fs.StringVar(&cfg.tlsKey, "tls-key", "", "the private key of -tls-cert, a PEM `file`")
	fs.BoolVar(&cfg.behindTLSProxy, "behind-tls-proxy", false, "a proxy in front terminates TLS: make the session cookie Secure (and __Host-) on plain HTTP too")
	fs.StringVar(&cfg.stateFile, "state", "", "keep the sessions in this `file` across restarts: restore them from it at start, save them to it every -save-every and at a signal, instead of ending them")
	fs.DurationVar(&cfg.saveEvery, "save-every", time.Minute, "with -state, save the sessions this often, the most a crash can lose (0: only at a signal)")
	fs.BoolVar(&cfg.startEmpty, "start-empty", false, "with -state, if the file cannot be read, move it aside and start with no sessions, instead of refusing to start")
	fs.TextVar(&cfg.logLevel, "log-level", slog.LevelInfo, "log `level`: debug (a line per session), info, warn or error")
	fs.StringVar(&cfg.redis, "redis", "", "keep the sessions on Redis at these `addresses` (host:port, comma-separated: one node, or a cluster's), shared with every sessiond using the same Redis and -redis-prefix, instead of in memory")
	fs.StringVar(&cfg.redisPrefix, "redis-prefix", "sw", "with -redis, start every key with this `prefix`")
	fs.StringVar(&cfg.logFormat, "log-format", "text", "log `format`: text or json")
	fs.BoolVar(&cfg.version, "version", false, "print the version and exit")

	bad := func(format string, args ...any) (config, error) {
		fmt.Fprintf(stderr, "invalid value: "+format+"\n", args...)
		fs.Usage()
		return cfg, errUsage
	}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "version" || envErr != nil {
			return
		}
		name := envName(f.Name)
		if v, ok := getenv(name); ok {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s=%q: %v", name, v, err)
			}
		}
	})
	if envErr != nil {
		return bad("%v", envErr)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, errUsage // the flag package has said why
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
	case cfg.maxPerOwner < 0:
		return bad("-max-per-owner %d: must not be negative", cfg.maxPerOwner)
	case cfg.preload < 0:
		return bad("-preload %d: must not be negative", cfg.preload)
	case cfg.maxSessions > 0 && cfg.preload > cfg.maxSessions:
		return bad("-preload %d: must not be more than -max-sessions %d", cfg.preload, cfg.maxSessions)
	case cfg.logFormat != "text" && cfg.logFormat != "json":
		return bad("-log-format %q: must be text or json", cfg.logFormat)
	case cfg.maxHeaderBytes <= 0:
		return bad("-max-header-bytes %d: must be positive", cfg.maxHeaderBytes)
	case cfg.saveEvery < 0:
		return bad("-save-every %v: must not be negative", cfg.saveEvery)
	case cfg.drainDelay < 0:
		return bad("-drain-delay %v: must not be negative", cfg.drainDelay)
	case (cfg.tlsCert == "") != (cfg.tlsKey == ""):
		return bad("-tls-cert and -tls-key go together")
	}
	if cfg.redis != "" {
		// Bounds and files are for sessions in one process's memory: on
		// Redis, every process shares the sessions, and Redis keeps them.
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for _, name := range []string{"max-sessions", "evict", "max-per-owner", "state", "save-every", "start-empty"} {
			if set[name] {
				return bad("-%s is for sessions in memory; it cannot go with -redis", name)
			}
		}
		cfg.maxSessions = 0
		for _, a := range strings.Split(cfg.redis, ",") {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return bad("-redis %q: %q is not host:port", cfg.redis, a)
			}
		}
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

// version describes the binary: the module's version, the commit it was
// built from (with "+dirty" if the tree had changes) and when, and Go's
// version.
func version() string {
	v, rev, at := "(devel)", "", ""
	dirty := false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	out := "sessiond " + v
	if rev != "" {
		if dirty {
			rev += "+dirty"
		}
		out += " " + rev + " " + at
	}
	return out + " " + runtime.Version()
}
