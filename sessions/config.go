package sessions

import (
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"time"
)

// Defaults for the zero fields of a Config.
const (
	// DefaultIdleTimeout is Twisted Web's Session.sessionTimeout: 900 s.
	DefaultIdleTimeout = 15 * time.Minute
	// DefaultTick is the granularity of the manager's clock.
	DefaultTick = time.Second
	// DefaultShards is the number of independently locked parts of the table.
	DefaultShards = 64
	// DefaultQueueLen is the number of endings that may wait for their
	// callbacks before the driver waits for the workers.
	DefaultQueueLen = 1 << 16
)

// Limits on a Config.
const (
	// MinTick is the finest tick: timers and schedulers are not precise
	// below it, and a finer tick only costs wake-ups.
	MinTick = time.Millisecond
	// MaxShards bounds Config.Shards (the shard is taken from one byte of
	// the ID).
	MaxShards = 256
	// MaxShardSessions is how many sessions one shard can hold (its index
	// keeps slot numbers in 24 bits); Config.MaxSessions may not ask for
	// more than Shards times this.
	MaxShardSessions = 1<<24 - 2
	// MaxTimeout bounds IdleTimeout, AbsoluteTimeout and
	// Session.SetIdleTimeout: 100 years, far beyond any session and far
	// enough below the int64 nanosecond range that deadlines never overflow.
	// An idle timeout is also bounded by 2^32-1 ticks (about 49 days at the
	// finest tick, 136 years at the default one).
	MaxTimeout = 100 * 365 * 24 * time.Hour
)

// Errors reported by the manager and its sessions. Compare with errors.Is.
var (
	// ErrInvalidConfig wraps every error New returns for a bad Config.
	ErrInvalidConfig = errors.New("sessions: invalid configuration")
	// ErrTooManySessions: Create found the manager at Config.MaxSessions (or
	// a shard of its table full) and Config.Evict unset. Sessions alive are
	// not affected.
	ErrTooManySessions = errors.New("sessions: too many sessions")
	// ErrClosed: the manager has been closed.
	ErrClosed = errors.New("sessions: manager closed")
	// ErrEnded: the session has ended (or has been renewed under another
	// ID); its handle no longer names anything.
	ErrEnded = errors.New("sessions: session ended")
	// ErrNoValue: the session has no value under that key.
	ErrNoValue = errors.New("sessions: no such value")
	// ErrInvalidTimeout: SetIdleTimeout was given a duration that is not
	// positive, or above MaxTimeout or 2^32-1 ticks.
	ErrInvalidTimeout = errors.New("sessions: invalid timeout")
	// ErrInvalidOwner: SetOwner was given an owner longer than MaxOwnerLen
	// bytes. It is refused, never truncated: two long owners that share a
	// prefix must not become one.
	ErrInvalidOwner = errors.New("sessions: invalid owner")
	// ErrOwnerLimit: SetOwner found the owner at Config.MaxPerOwner live
	// sessions and Config.RefuseOverMaxPerOwner set. The session keeps the
	// owner it had.
	ErrOwnerLimit = errors.New("sessions: owner has Config.MaxPerOwner sessions")
)

// Config configures a Manager. The zero Config is Twisted's: sessions end
// after 15 minutes without a touch.
type Config struct {
	// IdleTimeout is how long a session lives without being touched
	// (Twisted's sessionTimeout). Zero means DefaultIdleTimeout. It is
	// rounded up to whole ticks, and may not exceed MaxTimeout or 2^32-1
	// ticks.
	IdleTimeout time.Duration
	// AbsoluteTimeout, if positive, ends every session that long after its
	// creation however often it is touched (OWASP's absolute timeout). It
	// may not exceed MaxTimeout.
	AbsoluteTimeout time.Duration
	// Tick is the granularity of endings: a session's end is its deadline
	// rounded up to a multiple of Tick since the manager started, so it ends
	// between 0 and 1 tick after its timeout has passed (plus scheduling
	// delay), never before. The driver wakes at most once per tick, and only
	// for ticks at which something ends. Zero means DefaultTick; it may not
	// be below MinTick.
	Tick time.Duration
	// MaxSessions, if positive, bounds the number of live sessions (Len
	// never exceeds it, even while Creates race); Create beyond it fails
	// with ErrTooManySessions, or evicts if Evict is set.
	MaxSessions int
	// Evict makes Create, when the manager is full, end the session that
	// would end soonest (the least recently used, when sessions share one
	// idle timeout) with reason Evicted instead of failing, and take its
	// place. Sessions are compared by their end, which is exact to the tick
	// when the earliest ends fall within 64 ticks of the driver's last look;
	// among sessions ending further out, those filed first go first. A
	// session whose deadline has already passed is taken first and ends as
	// Idle (or Absolute). Touched sessions met on the way are filed at their
	// new end, work that their touches pay for.
	Evict bool
	// MaxPerOwner, if positive, bounds the live sessions of one owner
	// (Session.SetOwner; Spring Security's concurrent-session control).
	// When SetOwner would give an owner one more, the owner's least recently
	// used other session (by last touch, to the tick; ties by creation, then
	// by ID) ends with reason Evicted, unless RefuseOverMaxPerOwner is set.
	MaxPerOwner int
	// RefuseOverMaxPerOwner makes SetOwner fail with ErrOwnerLimit, rather
	// than evict, when the owner has MaxPerOwner sessions.
	RefuseOverMaxPerOwner bool
	// Shards is the number of independently locked parts of the table, a
	// power of two up to MaxShards. Zero means DefaultShards.
	Shards int
	// Workers is the number of goroutines that run expiry callbacks. Zero
	// means GOMAXPROCS.
	Workers int
	// QueueLen is how many endings may wait for their callbacks before the
	// driver stops ending sessions until the workers catch up. Zero means
	// DefaultQueueLen. Explicit endings (Expire) never wait.
	QueueLen int
	// OnExpire, if set, is called for every session that ends, after the
	// session's own NotifyOnExpire callbacks.
	OnExpire func(Session, Reason)
	// DiscardOnClose makes Close drop the sessions still alive without
	// ending them: no callbacks run and they are not counted as ended.
	DiscardOnClose bool
	// Clock is the source of time. Nil means the system clock.
	Clock Clock
	// Restore, if set, is a snapshot (Manager.Snapshot) that New starts
	// with: its sessions come back with their IDs, times, own idle timeouts
	// and values, and those whose end passed meanwhile end at once, as Idle
	// or Absolute (Config.OnExpire sees them). Callbacks registered with
	// NotifyOnExpire are not in a snapshot: register them again. New reads
	// Restore to its end, and fails, starting nothing, if it is not a whole,
	// intact snapshot (snapshot.go lists the errors) or holds more than
	// MaxSessions sessions: with MaxSessions 0, only the memory bounds what
	// a snapshot may bring back.
	Restore io.Reader
	// Codec encodes values for Snapshot and decodes them for Restore, and
	// for a shared Store, which keeps values encoded. Nil means GobCodec.
	Codec Codec
	// Store, if set, keeps the sessions outside this process, shared with
	// other processes that use the same store (see Store; redisstore is one
	// on Redis). Nil keeps them in this process's memory. A manager on a
	// shared store claims endings from it and runs Config.OnExpire for
	// those it claimed; Close leaves the sessions in the store. Options
	// that make sense only for sessions of one process are refused with
	// ErrInvalidConfig: MaxSessions, Evict, MaxPerOwner, DiscardOnClose and
	// Restore; Session.NotifyOnExpire fails (a closure cannot cross
	// processes), and Manager.Snapshot too (the store keeps the sessions).
	Store Store
}

// withDefaults fills the zero fields and checks the rest.
func (c Config) withDefaults() (Config, error) {
	bad := func(format string, args ...any) (Config, error) {
		return Config{}, fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.Tick == 0 {
		c.Tick = DefaultTick
	}
	if c.Shards == 0 {
		c.Shards = DefaultShards
	}
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.QueueLen == 0 {
		c.QueueLen = DefaultQueueLen
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	if c.Codec == nil {
		c.Codec = GobCodec{}
	}
	switch {
	case c.Tick < MinTick || c.Tick > MaxTimeout:
		return bad("Tick %v is not between %v and MaxTimeout", c.Tick, MinTick)
	case c.IdleTimeout < 0:
		return bad("IdleTimeout %v is negative", c.IdleTimeout)
	case c.IdleTimeout > MaxTimeout:
		return bad("IdleTimeout %v is above MaxTimeout", c.IdleTimeout)
	case ticks(c.IdleTimeout, c.Tick) > math.MaxUint32:
		return bad("IdleTimeout %v is more than 2^32 ticks of %v", c.IdleTimeout, c.Tick)
	case c.AbsoluteTimeout < 0:
		return bad("AbsoluteTimeout %v is negative", c.AbsoluteTimeout)
	case c.AbsoluteTimeout > MaxTimeout:
		return bad("AbsoluteTimeout %v is above MaxTimeout", c.AbsoluteTimeout)
	case c.MaxSessions < 0:
		return bad("MaxSessions %d is negative", c.MaxSessions)
	case c.MaxPerOwner < 0:
		return bad("MaxPerOwner %d is negative", c.MaxPerOwner)
	case c.Shards < 0 || c.Shards > MaxShards || c.Shards&(c.Shards-1) != 0:
		return bad("Shards %d is not a power of two from 1 to %d", c.Shards, MaxShards)
	case c.MaxSessions > c.Shards*MaxShardSessions:
		return bad("MaxSessions %d is more than %d shards can hold", c.MaxSessions, c.Shards)
	case c.Workers < 0:
		return bad("Workers %d is negative", c.Workers)
	case c.QueueLen < 0:
		return bad("QueueLen %d is negative", c.QueueLen)
	case c.Store != nil && (c.MaxSessions != 0 || c.Evict || c.MaxPerOwner != 0 || c.DiscardOnClose || c.Restore != nil):
		return bad("MaxSessions, Evict, MaxPerOwner, DiscardOnClose and Restore are for sessions in memory, not on a shared Store")
	}
	return c, nil
}

// ticks returns d in ticks of t, rounded up; d is at most MaxTimeout, so
// the sum does not overflow.
func ticks(d, t time.Duration) int64 { return int64((d + t - 1) / t) }

// validTimeout reports whether d may be a session's own idle timeout.
func validTimeout(d, tick time.Duration) bool {
	return d > 0 && d <= MaxTimeout && ticks(d, tick) <= math.MaxUint32
}
