package sessions

import (
	"context"
	"errors"
	"time"
)

// A Store keeps a manager's sessions outside its process, so that several
// processes share one set of sessions: any of them serves any session, and
// each ending is claimed by exactly one of them. Set Config.Store to use
// one; package github.com/sessionwheel/sessionwheel/redisstore implements
// it on Redis. Without one, a manager keeps its sessions in memory.
//
// A shared store keeps its own clock (Redis's, for redisstore): it alone
// decides when a session ends, so that processes whose clocks disagree
// still agree on every ending. A session is alive until its deadline: its
// idle timeout after its last touch (a store may write touches lazily,
// moving the deadline at most once per Slack, so a session ends up to one
// Slack late, never early), or its creation plus its absolute timeout.
//
// The manager calls a Store from many goroutines at once. Every method that
// talks to the store's server wraps ErrUnavailable in the error it returns
// when the server cannot be reached or did not answer in time: the
// operation's outcome is then unknown, and a session must not be taken as
// ended because of it. A method given an ID that names no live session
// returns ErrNotFound (Value, times and deletion go on working while the
// session's ending is claimed and not yet acknowledged).
type Store interface {
	// Open gives the store the manager's settings; New calls it once,
	// before any other method, and fails with its error.
	Open(cfg StoreConfig) error
	// Create adds a live session under id, created now, and returns its
	// record. It fails with ErrIDInUse if id is taken (the manager then
	// draws another).
	Create(ctx context.Context, id ID) (Record, error)
	// Lookup returns the record of the live session id, touching it first
	// if touch is set.
	Lookup(ctx context.Context, id ID, touch bool) (Record, error)
	// Renew moves the live session id, with its values, owner, creation
	// time and idle timeout, to the unused nid in one step, and touches it:
	// id stops naming it everywhere at once.
	Renew(ctx context.Context, id, nid ID) (Record, error)
	// Expire ends the live session id now and claims its ending, which
	// the manager acknowledges with Ack after running the callbacks. Of
	// several processes racing to end one session, exactly one succeeds;
	// the others get ErrNotFound. A session whose deadline has passed
	// ends for its own reason (Idle or Absolute), not Explicit.
	Expire(ctx context.Context, id ID) (Ending, error)
	// Value returns the encoded value under key (ErrNoValue if none). It
	// works while the session's ending is claimed and not yet acknowledged.
	Value(ctx context.Context, id ID, key string) ([]byte, error)
	// SetValue and DeleteValue change the values of the live session id.
	SetValue(ctx context.Context, id ID, key string, value []byte) error
	DeleteValue(ctx context.Context, id ID, key string) error
	// SetIdleTimeout gives the live session id its own idle timeout,
	// effective at once.
	SetIdleTimeout(ctx context.Context, id ID, d time.Duration) error
	// SetOwner makes owner the owner of the live session id ("" for none).
	SetOwner(ctx context.Context, id ID, owner string) error
	// Owned returns the records of owner's live sessions.
	Owned(ctx context.Context, owner string) ([]Record, error)
	// Claim claims up to max endings that are due (deadline passed, not
	// claimed, or claimed by a lease that has run out without an Ack), for
	// this process to run their callbacks, and returns when the next ending
	// may be due (the zero time if it does not know). A claim is exclusive
	// while its lease lasts.
	Claim(ctx context.Context, max int) (due []Ending, next time.Time, err error)
	// Ack reports that the callbacks of the endings have run: the store
	// drops those sessions, except the ones whose lease has run out (and
	// may have been claimed again elsewhere), which it counts as lost
	// leases.
	Ack(ctx context.Context, done []Ending) error
	// Len returns the number of live sessions, or of sessions not yet
	// acknowledged as ended, as the store counts them.
	Len(ctx context.Context) (int, error)
	// Range calls f with the ID of each live session until f returns false.
	Range(ctx context.Context, f func(ID) bool) error
	// Stats returns the store's counters.
	Stats() StoreStats
	// Close releases what Open and the methods took; the sessions stay in
	// the store. The manager's Close calls it last.
	Close() error
}

// StoreConfig is what a Store is told of its manager's Config.
type StoreConfig struct {
	// IdleTimeout and AbsoluteTimeout are the manager's (AbsoluteTimeout
	// 0: none).
	IdleTimeout, AbsoluteTimeout time.Duration
	// Tick is the manager's tick: how late an ending may be. A store may
	// use it as the slack of lazy touch writes.
	Tick time.Duration
}

// A Record is what a Store knows of a session.
type Record struct {
	// ID is the session's ID.
	ID ID
	// Created is when the session was created, LastAccess when it was last
	// touched as far as the store has written down, and Deadline when it
	// ends unless touched again.
	Created, LastAccess, Deadline time.Time
	// IdleTimeout is the session's own idle timeout, or 0 for the
	// manager's.
	IdleTimeout time.Duration
	// Owner is the session's owner, or "".
	Owner string
}

// An Ending is a session ending claimed by this process: its callbacks run,
// then the manager acknowledges it with Store.Ack.
type Ending struct {
	// ID is the session's ID.
	ID ID
	// Reason is why it ended.
	Reason Reason
	// Lease is the store's proof of the claim (for redisstore, the end of
	// the lease in milliseconds, which fences a late Ack); the manager
	// passes it back to Ack untouched.
	Lease int64
	// Redelivered is set when an earlier claim of this ending lapsed
	// without an Ack: its callbacks may have run already, in a process
	// that died or stalled.
	Redelivered bool
}

// StoreStats are a Store's counters, for monitoring; Stats.Store holds them.
type StoreStats struct {
	// Ops counts the store's operations by name ("create", "lookup",
	// "touch", "claim", ...) and outcome, with their latency.
	Ops []StoreOp
	// TouchWrites counts touches that wrote a new deadline (the rest were
	// absorbed by the slack).
	TouchWrites uint64
	// Claims counts claim calls that returned endings; EmptyClaims those
	// that found nothing due.
	Claims, EmptyClaims uint64
	// Redelivered counts endings claimed again after a lease lapsed
	// without an Ack; LeasesLost counts Acks refused because the lease had
	// lapsed; Abandoned counts claimed endings given back unrun because
	// their values could not be read (they are re-offered).
	Redelivered, LeasesLost, Abandoned uint64
	// DueBacklog is the number of sessions past their deadline and not yet
	// claimed, as last sampled.
	DueBacklog int64
}

// StoreOp is one operation's counters in StoreStats.
type StoreOp struct {
	// Name is the operation's name.
	Name string
	// OK counts calls that succeeded (a miss is a success); Errors those
	// that failed (ErrUnavailable and the like).
	OK, Errors uint64
	// Duration is the distribution of the calls' latency.
	Duration Histogram
}

// Errors of shared stores. Compare with errors.Is.
var (
	// ErrUnavailable wraps every error of a shared store (Config.Store)
	// that could not be reached or did not answer in time. Nothing was
	// lost: a session whose deadline passed meanwhile ends once the store
	// is back. httpadapter answers such lookups with 503 and never issues
	// a new session over the cookie.
	ErrUnavailable = errors.New("sessions: store unavailable")
	// ErrNotFound: no live session has this ID (it never existed, has
	// ended or passed its deadline). Manager.Lookup returns it; Store
	// implementations return it for every such ID.
	ErrNotFound = errors.New("sessions: no such session")
	// ErrIDInUse: a Store was asked to create a session under an ID it
	// already holds. The manager retries with a fresh ID; it never reaches
	// a caller.
	ErrIDInUse = errors.New("sessions: session id in use")
)
