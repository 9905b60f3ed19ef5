package redisstore

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// ErrInvalidOptions is wrapped by the error New returns for Options it
// cannot use.
var ErrInvalidOptions = errors.New("redisstore: invalid options")

// Options configure a Store. The zero value of each field selects its
// default; negative values are refused.
type Options struct {
	// Prefix starts every key of the store (default "sw"), so that several
	// stores share one Redis. It may not contain '{' or '}', which would
	// change the keys' hash tags.
	Prefix string
	// Buckets is the number of buckets the sessions are spread over
	// (default 64; a power of two from 1 to 256). A bucket's keys share
	// one hash tag, hence one cluster slot: more buckets spread the load
	// of a cluster more evenly (64 buckets: 20/22/22 over three masters),
	// and cost one script per bucket per Claim. All processes sharing the
	// sessions must use the same Prefix and Buckets.
	Buckets int
	// Slack is how far beyond now+idle timeout a touch moves a deadline
	// (default: the manager's Tick, from sessions.StoreConfig). A busy
	// session costs at most one Redis write per Slack and ends at most one
	// Slack late, never early.
	Slack time.Duration
	// Lease is how long a claimed ending is this process's alone to run
	// and acknowledge (default 30 s). It must outlast a failover and the
	// longest callback: an ending not acknowledged within its lease is
	// offered again, and its callbacks may run twice.
	Lease time.Duration
	// Batch is the most endings one claim script takes from one bucket
	// (default 500): it bounds how long the script holds Redis.
	Batch int
	// Timeout bounds each operation (default 250 ms): beyond it the
	// operation fails with an error wrapping sessions.ErrUnavailable, its
	// outcome unknown.
	Timeout time.Duration
	// Grace is how long after its deadline (or lease) a session's hash
	// outlives it, as garbage collection only (default 1 h): endings are
	// claimed from the sorted sets, never from key expiry. A session that
	// nobody claims within Grace of its deadline (every process down)
	// loses its values and its callbacks.
	Grace time.Duration
	// Poll bounds the wake hint Claim returns (default 1 s): a hint only
	// knows the sessions that existed when it was taken, and another
	// process may make one due sooner (a shorter SetIdleTimeout).
	Poll time.Duration
	// ClientCache, if positive, serves lookups from rueidis's client-side
	// cache for up to that long (default 0: off). A cached lookup costs
	// no round trip; Redis tells the client when another process changes
	// the session (a logout elsewhere is seen once that message arrives,
	// well under a millisecond on a LAN, measured 0.24 ms p50 in the
	// prototype), at the price of Redis's tracking memory (about 134 bytes
	// per cached session) and, while an entry is cached, of not noticing
	// that Redis is away. It needs a client with caching enabled (rueidis's
	// default); with ClientOption.DisableCache it does nothing.
	ClientCache time.Duration
	// Logger receives New's configuration warnings (default
	// slog.Default()).
	Logger *slog.Logger
}

// Defaults of Options.
const (
	DefaultPrefix  = "sw"
	DefaultBuckets = 64
	DefaultLease   = 30 * time.Second
	DefaultBatch   = 500
	DefaultTimeout = 250 * time.Millisecond
	DefaultGrace   = time.Hour
	DefaultPoll    = time.Second
	// MaxBuckets is the most buckets: a bucket is a function of one byte
	// of the session ID.
	MaxBuckets = 256
)

// withDefaults returns o with its defaults filled in, or an error wrapping
// ErrInvalidOptions.
func (o Options) withDefaults() (Options, error) {
	bad := func(format string, args ...any) (Options, error) {
		return o, fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
	}
	switch {
	case strings.ContainsAny(o.Prefix, "{}"):
		return bad("Prefix %q contains a brace", o.Prefix)
	case o.Buckets < 0 || o.Buckets > MaxBuckets || o.Buckets&(o.Buckets-1) != 0:
		return bad("Buckets %d is not a power of two from 1 to %d", o.Buckets, MaxBuckets)
	case o.Slack < 0:
		return bad("Slack %v is negative", o.Slack)
	case o.Lease < 0:
		return bad("Lease %v is negative", o.Lease)
	case o.Batch < 0:
		return bad("Batch %d is negative", o.Batch)
	case o.Timeout < 0:
		return bad("Timeout %v is negative", o.Timeout)
	case o.Grace < 0:
		return bad("Grace %v is negative", o.Grace)
	case o.Poll < 0:
		return bad("Poll %v is negative", o.Poll)
	case o.ClientCache < 0:
		return bad("ClientCache %v is negative", o.ClientCache)
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Buckets == 0 {
		o.Buckets = DefaultBuckets
	}
	if o.Lease == 0 {
		o.Lease = DefaultLease
	}
	if o.Batch == 0 {
		o.Batch = DefaultBatch
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Grace == 0 {
		o.Grace = DefaultGrace
	}
	if o.Poll == 0 {
		o.Poll = DefaultPoll
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	// Redis keeps times in milliseconds: below that, a duration would be
	// rounded to nothing.
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Lease", o.Lease}, {"Timeout", o.Timeout}, {"Grace", o.Grace}, {"Poll", o.Poll}} {
		if d.v < time.Millisecond {
			return bad("%s %v is below a millisecond", d.name, d.v)
		}
	}
	return o, nil
}
