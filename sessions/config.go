package sessions

import (
	"errors"
	"fmt"
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
	// MaxTimerLag bounds how late the manager's timer may fire without a
	// session ending early: touches are dated by the tick the timer last
	// published, and a late timer makes that date stale. Endings are delayed
	// by the lag the timer had, up to this bound; a longer lag is a frozen
	// process (a suspended VM) after which due sessions end at once.
	MaxTimerLag = time.Second
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
	// positive or does not fit.
	ErrInvalidTimeout = errors.New("sessions: invalid timeout")
)

// Config configures a Manager. The zero Config is Twisted's: sessions end
// after 15 minutes without a touch.
type Config struct {
	// IdleTimeout is how long a session lives without being touched
	// (Twisted's sessionTimeout). Zero means DefaultIdleTimeout. It is
	// rounded up to whole ticks.
	IdleTimeout time.Duration
	// AbsoluteTimeout, if positive, ends every session that long after its
	// creation however often it is touched (OWASP's absolute timeout).
	AbsoluteTimeout time.Duration
	// Tick is the granularity of the manager's clock: a session ends between
	// 0 and 1 tick after its deadline (plus scheduling delay), never before.
	// Zero means DefaultTick; it may not be below MinTick.
	Tick time.Duration
	// MaxSessions, if positive, bounds the number of live sessions; Create
	// beyond it fails with ErrTooManySessions, or evicts if Evict is set.
	MaxSessions int
	// Evict makes Create, when the manager is full, end one session of the
	// new session's shard with reason Evicted instead of failing: the one
	// whose wheel entry is due first among a few candidates, which
	// approximates the least recently used.
	Evict bool
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
	switch {
	case c.Tick < MinTick:
		return bad("Tick %v is below %v", c.Tick, MinTick)
	case c.IdleTimeout < 0:
		return bad("IdleTimeout %v is negative", c.IdleTimeout)
	case c.IdleTimeout/c.Tick >= math.MaxUint32:
		return bad("IdleTimeout %v is more than 2^32 ticks of %v", c.IdleTimeout, c.Tick)
	case c.AbsoluteTimeout < 0:
		return bad("AbsoluteTimeout %v is negative", c.AbsoluteTimeout)
	case c.MaxSessions < 0:
		return bad("MaxSessions %d is negative", c.MaxSessions)
	case c.Shards < 0 || c.Shards > MaxShards || c.Shards&(c.Shards-1) != 0:
		return bad("Shards %d is not a power of two from 1 to %d", c.Shards, MaxShards)
	case c.MaxSessions > c.Shards*MaxShardSessions:
		return bad("MaxSessions %d is more than %d shards can hold", c.MaxSessions, c.Shards)
	case c.Workers < 0:
		return bad("Workers %d is negative", c.Workers)
	case c.QueueLen < 0:
		return bad("QueueLen %d is negative", c.QueueLen)
	}
	return c, nil
}

// ticks returns d in ticks of t, rounded up.
func ticks(d, t time.Duration) int64 { return int64((d + t - 1) / t) }
