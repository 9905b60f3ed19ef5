package sessions

import "strconv"

// A Reason says why a session ended. Every session ends exactly once, for
// one reason.
type Reason uint8

const (
	// Idle: nobody touched the session for its idle timeout.
	Idle Reason = iota + 1
	// Absolute: the session reached Config.AbsoluteTimeout after its
	// creation, however active it was.
	Absolute
	// Explicit: the session was ended by Expire (a logout).
	Explicit
	// Shutdown: the manager was closed while the session was alive.
	Shutdown
	// Evicted: the manager was full and Config.Evict made room.
	Evicted
)

// Reasons returns every Reason, in order, for callers that keep a count of
// each (Stats.Ended is indexed by Reason).
func Reasons() []Reason { return []Reason{Idle, Absolute, Explicit, Shutdown, Evicted} }

var reasonNames = [...]string{Idle: "idle", Absolute: "absolute", Explicit: "explicit", Shutdown: "shutdown", Evicted: "evicted"}

// String returns the reason in lower case ("idle", "explicit", ...), fit for a
// metric label or a log line.
func (r Reason) String() string {
	if r >= Idle && int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "Reason(" + strconv.Itoa(int(r)) + ")"
}
