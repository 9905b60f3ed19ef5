// Package sessions keeps idle HTTP sessions and ends each one on time, for a
// fraction of what one time.Timer per session costs.
//
// The semantics are Twisted Web's: a session ends after its idle timeout
// (15 minutes by default) without a touch; a site may change the timeout
// (Config.IdleTimeout) or a session its own (Session.SetIdleTimeout);
// callbacks registered with Session.NotifyOnExpire run when it ends, also
// when it is ended on purpose (Expire, a logout); and an unknown ID is never
// adopted: only Create makes a session, with a fresh random ID. Beyond
// Twisted: an optional absolute timeout, a bound on the number of sessions,
// idempotent ending, callbacks isolated from each other's panics, and a
// defined shutdown (Close ends the rest with reason Shutdown).
//
// # How it is built
//
// Sessions live in a table split into shards by a byte of their random ID.
// Each shard has one lock, an open-addressing index from ID to slot, an arena
// of fixed-size, pointer-free records (so the garbage collector never scans
// them) and a hierarchical timing wheel (package wheel) over its slots. Values
// and callbacks live beside the arena, only for sessions that have them. A
// Session is a handle (shard, slot, generation, ID), not a pointer.
//
// A touch does not move the session in the wheel: it stores the tick of
// the touch in the record. When the session's wheel entry comes due, the
// driver goroutine looks at the session's real end and either ends it or
// files it again, so a session is re-filed about once per idle period
// however often it is touched.
//
// # Time model
//
// Every time is read from the manager's clock (Config.Clock; for the system
// clock, only its monotonic reading, about 25 ns) under the lock of the
// session's shard; a touch stores the tick it falls in, never moving it
// backwards. A session ends at the end of the tick of its last touch plus
// its idle timeout, or at its creation plus Config.AbsoluteTimeout rounded
// up to a tick if that is earlier (Session.Deadline), and is alive exactly
// until then: lookups, touches, Expire, Renew, Range, the driver, Sweep and
// Close all decide with that one predicate. No session ends early: the
// touch happened before the end of its tick, and an ending is decided under
// the same lock with a later reading. At most a tick late, plus scheduling
// delay: the driver wakes at the tick a session ends at.
// timemodel.go has the argument in full.
//
// The driver wakes only when a shard has something due, handles at most 512
// wheel entries per hold of a shard's lock, and hands the endings to a
// bounded pool of workers that run the callbacks with no lock held; when the
// callbacks fall behind, the driver waits for them (Config.QueueLen), so no
// ending is dropped.
//
// # Restarts
//
// Manager.Snapshot writes the live sessions (IDs, times, own timeouts,
// values through a Codec) while the manager serves, a few hundred slots per
// hold of a shard's lock; Config.Restore starts a new manager with them,
// their deadlines kept in wall-clock terms, never earlier (under the same
// IdleTimeout). Callbacks registered with NotifyOnExpire are not saved.
// snapshot.go has the format and its errors.
//
// # Seams
//
// The manager keeps its sessions in a store, behind a small unexported
// interface (store.go): create, look up and touch, end exactly once (the
// claim), renew, end what is due in bounded batches, release after the
// callbacks, range, stats, and the per-session reads and writes behind a
// handle. A Session holds an opaque reference that only its store
// interprets. The in-memory store is memstore.go over the sharded table of
// table.go; the time model all stores share is timemodel.go. A store shared
// by several processes (Redis, so that each expiry is claimed once) is a
// second implementation of the same interface; the IDs, the bound on live
// sessions, the driver's schedule, the callback pool and the stats stay in
// the manager.
package sessions
