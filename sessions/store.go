package sessions

import "time"

// A store keeps a manager's sessions: where they live, how an ID finds one,
// when each is due, and ending each exactly once (the claim). The manager
// brings the rest: fresh IDs, the bound on live sessions, the driver's
// schedule, the callback pool and the counters it keeps itself. The
// in-memory store (memstore.go, over the table in table.go) is the only one
// today; a store shared by several processes (Redis) is the next, and this
// interface is what it will implement.
//
// Every method is safe for concurrent use. Times follow the time model
// (timemodel.go): a store decides "has ended" with timeModel.endsAt and the
// clock read under its own lock. A store never runs callbacks: it hands the
// endings that have any to the manager in batches, and frees them when the
// manager calls release after running them.
type store interface {
	// create adds a live session under id, which is fresh. It fails with
	// ErrTooManySessions when the store is full.
	create(id ID) (ref, error)
	// lookup finds the live session id, touching it if touch is set; ok is
	// false for an unknown, ended or expired ID.
	lookup(id ID, touch bool) (r ref, ok bool)
	// expire ends the live session id with reason Explicit, or, if it has
	// expired, for the reason it expired (alive is then false); ended is
	// false if id names no live session. An ending with callbacks to run
	// is appended to b.
	expire(id ID, b []ending) (_ []ending, ended, alive bool)
	// renew moves the live session id to the fresh nid, keeping everything
	// but the ID, and touches it.
	renew(id, nid ID) (ref, error)
	// evict ends the session that ends soonest with reason Evicted (or the
	// reason it expired for) without giving its place in the live count
	// back: the caller takes it. ok is false if there is no session.
	evict(b []ending) (_ []ending, ok bool)
	// sweep ends every session due by now, handing each bounded batch of
	// endings to emit with the number of sessions the batch ended (emit may
	// block: backpressure), and returns how many it ended in all. It
	// returns early, with work left, once stop is closed.
	sweep(emit func(b []ending, ended int), stop <-chan struct{}) (ended int)
	// next returns a tick at or before which something may be due, or
	// MaxInt64 if nothing is filed.
	next() int64
	// shutdown ends every live session with reason Shutdown (or the reason
	// it expired for), or drops it without an ending if discard is set,
	// handing batches to emit as sweep does (ended counts both).
	shutdown(discard bool, emit func(b []ending, ended int))
	// release frees the sessions of a batch whose callbacks have run.
	release(b []ending)
	// each calls f for each live session until f returns false, holding no
	// lock while f runs.
	each(f func(ID, ref) bool)
	// addStats adds the store's counters to st.
	addStats(st *Stats)

	// The rest act on one session through a handle: id and the ref the
	// store returned. A handle whose session has ended (or expired, for
	// the methods that change it) gets ErrEnded.

	// alive reports whether the session is alive.
	alive(id ID, r ref) bool
	// touch touches the session.
	touch(id ID, r ref) error
	// expireRef ends the session with reason Explicit, as expire does.
	expireRef(id ID, r ref, b []ending) ([]ending, error)
	// value, setValue and deleteValue read and change the session's
	// values; value works while its callbacks run, too.
	value(id ID, r ref, key string) (any, error)
	setValue(id ID, r ref, key string, v any) error
	deleteValue(id ID, r ref, key string) error
	// notify registers a callback for the session's ending.
	notify(id ID, r ref, f func(Session, Reason)) error
	// setIdle gives the session its own idle timeout, in ticks.
	setIdle(id ID, r ref, ticks uint32) error
	// idleTimeout returns the session's idle timeout, own or default.
	idleTimeout(id ID, r ref) (time.Duration, error)
	// times returns when the session was created, the start of the tick of
	// its last touch, and when it ends.
	times(id ID, r ref) (created, access, end int64, err error)

	// Owners (owners.go). setOwner gives the session an owner ("" for
	// none) under a limit per owner (0: none), evicting or refusing with
	// ErrOwnerLimit; ended counts the sessions it ended on the way.
	setOwner(id ID, r ref, owner string, limit int, refuse bool, b []ending) (_ []ending, ended int, err error)
	// ownerOf returns the session's owner; it works while its callbacks
	// run, too.
	ownerOf(id ID, r ref) (string, error)
	// ownedBy returns the owner's live sessions, read at one moment.
	ownedBy(owner string) []ownedSession
	// expireOwner ends the owner's live sessions, each exactly once:
	// ended counts them, alive those that ended as Explicit.
	expireOwner(owner string, b []ending) (_ []ending, ended, alive int)
}

// A ref names a session inside its store; only the store interprets it.
// The in-memory store keeps the session's shard, slot and the slot's
// generation, so that a ref to a session that has ended never reaches the
// slot's next occupant.
type ref struct {
	slot, gen uint32
	part      uint16
}

// An ending is a session whose callbacks are to run.
type ending struct {
	id     ID
	r      ref
	reason Reason
	notify []func(Session, Reason)
	// A shared store's claim (sharedstore.go): the lease to acknowledge,
	// and whether an earlier claim lapsed.
	lease       int64
	redelivered bool
}
