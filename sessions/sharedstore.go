package sessions

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// sharedStore puts a shared Store (Config.Store) behind the manager's store
// interface, so that the manager, its sessions, the driver and the callback
// pool work on it as on the in-memory table. The differences, in short:
// handles carry no ref (the ID is the key); the driver claims endings
// instead of sweeping a wheel, asking again at least once per tick since
// other processes file sessions it does not hear of; a batch's release
// acknowledges the claims; Close leaves the sessions in the store.
type sharedStore struct {
	s     Store
	tm    *timeModel
	codec Codec
	newID func() ID
	// room is how many endings the callback queue can take now: claims
	// beyond it would wait in the queue while their leases run.
	room func() int

	// claimCtx is cancelled by shutdown: a claim in flight when Close
	// begins gives up. Acks use a context of their own: they must finish.
	claimCtx    context.Context
	cancelClaim context.CancelFunc

	// This process's share of the counters Stats reports for sessions in
	// memory: the store counts for all processes (Stats.Store), these for
	// the operations made here.
	created, renewed, touches, hits, misses atomic.Uint64
	ended                                   [Evicted + 1]atomic.Uint64

	mu      sync.Mutex
	hint    int64 // when the store said the next ending may be due (epoch ns); MaxInt64: unknown
	backoff time.Duration
	retryAt int64 // while the store is unavailable: when to claim again (epoch ns)
}

// Claiming backs off from the store's failures, doubling from the first to
// the last.
const (
	firstBackoff = 50 * time.Millisecond
	lastBackoff  = time.Second
)

// claimBatch bounds one Claim call: the queue's room beyond it waits for the
// next call of the same sweep.
const claimBatch = 512

// errSnapshotShared is Snapshot's error on a shared store, which keeps the
// sessions itself.
var errSnapshotShared = fmt.Errorf("sessions: Snapshot of a shared Store (the store keeps the sessions): %w", errors.ErrUnsupported)

// errNotifyShared is NotifyOnExpire's error on a shared store.
var errNotifyShared = fmt.Errorf("sessions: NotifyOnExpire on a shared Store (a closure cannot cross processes; use Config.OnExpire): %w", errors.ErrUnsupported)

func newSharedStore(s Store, tm *timeModel, codec Codec, newID func() ID, room func() int) *sharedStore {
	st := &sharedStore{s: s, tm: tm, codec: codec, newID: newID, room: room, hint: math.MaxInt64}
	st.claimCtx, st.cancelClaim = context.WithCancel(context.Background())
	return st
}

var bg = context.Background()

// at converts a store's time to the manager's: nanoseconds since its epoch.
func (st *sharedStore) at(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return int64(t.Sub(st.tm.epoch))
}

// gone maps the store's "no such session" to a handle's ErrEnded.
func gone(err error) error {
	if errors.Is(err, ErrNotFound) {
		return ErrEnded
	}
	return err
}

func (st *sharedStore) create(id ID) (ref, error) {
	_, err := st.createRecord(id)
	return ref{}, err
}

// createRecord creates a session under id, or under a fresh ID if id is
// taken, and returns its record.
func (st *sharedStore) createRecord(id ID) (Record, error) {
	for range 8 { // 2^-128 per draw: a second one is already a bug
		rec, err := st.s.Create(bg, id)
		if !errors.Is(err, ErrIDInUse) {
			if err == nil {
				st.created.Add(1)
				if rec.ID == (ID{}) {
					rec.ID = id
				}
			}
			return rec, err
		}
		id = st.newID()
	}
	return Record{}, fmt.Errorf("sessions: the store found every fresh ID in use: %w", ErrIDInUse)
}

func (st *sharedStore) lookup(id ID, touch bool) (ref, bool) {
	err := st.lookupErr(id, touch)
	return ref{}, err == nil
}

// lookupErr looks id up, touching it if touch is set, and counts.
func (st *sharedStore) lookupErr(id ID, touch bool) error {
	_, err := st.s.Lookup(bg, id, touch)
	switch {
	case err == nil:
		st.hits.Add(1)
		if touch {
			st.touches.Add(1)
		}
	case errors.Is(err, ErrNotFound):
		st.misses.Add(1)
	}
	return err
}

func (st *sharedStore) expire(id ID, b []ending) (_ []ending, ended, alive bool) {
	e, err := st.s.Expire(bg, id)
	if err != nil {
		return b, false, false
	}
	return append(b, st.ending(e)), true, e.Reason == Explicit
}

func (st *sharedStore) ending(e Ending) ending {
	if int(e.Reason) < len(st.ended) {
		st.ended[e.Reason].Add(1)
	}
	return ending{id: e.ID, reason: e.Reason, lease: e.Lease, redelivered: e.Redelivered}
}

func (st *sharedStore) renew(id, nid ID) (ref, error) {
	_, err := st.renewRecord(id, nid)
	return ref{}, err
}

func (st *sharedStore) renewRecord(id, nid ID) (Record, error) {
	rec, err := st.s.Renew(bg, id, nid)
	if err != nil {
		return Record{}, gone(err)
	}
	if rec.ID == (ID{}) {
		rec.ID = nid
	}
	st.renewed.Add(1)
	st.touches.Add(1)
	return rec, nil
}

// evict is never called: Config.MaxSessions is refused with a shared store.
func (st *sharedStore) evict(b []ending) ([]ending, bool) { return b, false }

// sweep claims what is due, as much as the callback queue has room for, in
// batches, until the store has nothing more due or stop is closed.
func (st *sharedStore) sweep(emit func(b []ending, ended int), stop <-chan struct{}) (ended int) {
	now := st.tm.now()
	st.mu.Lock()
	wait := now < st.retryAt
	st.mu.Unlock()
	if wait {
		return 0
	}
	for {
		select {
		case <-stop:
			return ended
		default:
		}
		n := min(st.room(), claimBatch)
		if n <= 0 {
			return ended // the workers are behind: claim when they catch up
		}
		due, next, err := st.s.Claim(st.claimCtx, n)
		st.mu.Lock()
		if err != nil {
			st.backoff = min(max(2*st.backoff, firstBackoff), lastBackoff)
			st.retryAt = st.tm.now() + int64(st.backoff)
			st.mu.Unlock()
			return ended
		}
		st.backoff, st.retryAt = 0, 0
		st.hint = math.MaxInt64
		if !next.IsZero() {
			st.hint = st.at(next)
		}
		st.mu.Unlock()
		if len(due) > 0 {
			b := make([]ending, len(due))
			for i, e := range due {
				b[i] = st.ending(e)
			}
			ended += len(b)
			emit(b, len(b))
		}
		if len(due) < n {
			return ended
		}
	}
}

// next returns the tick to claim at: the store's hint, but no later than a
// tick from now (other processes file sessions this one does not hear of),
// or when the back-off ends.
func (st *sharedStore) next() int64 {
	now := st.tm.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	t := min(st.hint, now+st.tm.tick)
	if st.retryAt > now {
		t = st.retryAt
	}
	return st.tm.tickOf(max(t, now)) + 1
}

// shutdown stops claiming; the sessions stay in the store for the other
// processes (or this one's next start) to serve and end.
func (st *sharedStore) shutdown(discard bool, emit func(b []ending, ended int)) {
	st.cancelClaim()
}

// release acknowledges the claims of a batch whose callbacks have run. The
// store retries an Ack while the lease lasts; an Ack it could not make
// lets the lease run out, and the ending is offered again (at least once).
func (st *sharedStore) release(b []ending) {
	if len(b) == 0 {
		return
	}
	done := make([]Ending, 0, len(b))
	for _, e := range b {
		if e.lease != 0 {
			done = append(done, Ending{ID: e.id, Reason: e.reason, Lease: e.lease, Redelivered: e.redelivered})
		}
	}
	if len(done) > 0 {
		_ = st.s.Ack(bg, done) // counted by the store (Stats.Store)
	}
}

func (st *sharedStore) each(f func(ID, ref) bool) {
	_ = st.s.Range(bg, func(id ID) bool { return f(id, ref{}) })
}

func (st *sharedStore) addStats(out *Stats) {
	out.Created = st.created.Load()
	out.Renewed = st.renewed.Load()
	out.Touches = st.touches.Load()
	out.LookupHits, out.LookupMisses = st.hits.Load(), st.misses.Load()
	for r := range st.ended {
		out.Ended[r] = st.ended[r].Load()
	}
	out.Store = st.s.Stats()
	n, err := st.s.Len(bg)
	if err == nil {
		out.Active = n
	}
}

func (st *sharedStore) alive(id ID, _ ref) bool {
	_, err := st.s.Lookup(bg, id, false)
	return err == nil
}

func (st *sharedStore) touch(id ID, _ ref) error {
	return gone(st.lookupErr(id, true))
}

func (st *sharedStore) expireRef(id ID, _ ref, b []ending) ([]ending, error) {
	e, err := st.s.Expire(bg, id)
	if err != nil {
		return b, gone(err)
	}
	b = append(b, st.ending(e))
	if e.Reason != Explicit {
		// Past its deadline: it ended for its own reason, as the driver
		// would have ended it, and Expire reports it gone.
		return b, ErrEnded
	}
	return b, nil
}

func (st *sharedStore) value(id ID, _ ref, key string) (any, error) {
	data, err := st.s.Value(bg, id, key)
	if err != nil {
		return nil, gone(err)
	}
	return st.codec.Unmarshal(data)
}

func (st *sharedStore) setValue(id ID, _ ref, key string, v any) error {
	data, err := st.codec.Marshal(v)
	if err != nil {
		return err
	}
	return gone(st.s.SetValue(bg, id, key, data))
}

func (st *sharedStore) deleteValue(id ID, _ ref, key string) error {
	return gone(st.s.DeleteValue(bg, id, key))
}

func (st *sharedStore) notify(ID, ref, func(Session, Reason)) error { return errNotifyShared }

func (st *sharedStore) setIdle(id ID, _ ref, ticks uint32) error {
	return gone(st.s.SetIdleTimeout(bg, id, time.Duration(int64(ticks)*st.tm.tick)))
}

func (st *sharedStore) idleTimeout(id ID, _ ref) (time.Duration, error) {
	rec, err := st.s.Lookup(bg, id, false)
	if err != nil {
		return 0, gone(err)
	}
	if rec.IdleTimeout > 0 {
		return rec.IdleTimeout, nil
	}
	return time.Duration(st.tm.idle), nil
}

func (st *sharedStore) times(id ID, _ ref) (created, access, end int64, err error) {
	rec, err := st.s.Lookup(bg, id, false)
	if err != nil {
		return 0, 0, 0, gone(err)
	}
	return st.at(rec.Created), st.at(rec.LastAccess), st.at(rec.Deadline), nil
}

// setOwner: MaxPerOwner is refused with a shared store, so limit is 0.
func (st *sharedStore) setOwner(id ID, _ ref, owner string, _ int, _ bool, b []ending) ([]ending, int, error) {
	return b, 0, gone(st.s.SetOwner(bg, id, owner))
}

func (st *sharedStore) ownerOf(id ID, _ ref) (string, error) {
	rec, err := st.s.Lookup(bg, id, false)
	if err != nil {
		return "", gone(err)
	}
	return rec.Owner, nil
}

func (st *sharedStore) ownedBy(owner string) []ownedSession {
	if owner == "" {
		return nil
	}
	recs, err := st.s.Owned(bg, owner)
	if err != nil {
		return nil
	}
	out := make([]ownedSession, 0, len(recs))
	for _, rec := range recs {
		out = append(out, ownedSession{id: rec.ID, created: st.at(rec.Created),
			access: st.at(rec.LastAccess), ends: st.at(rec.Deadline)})
	}
	return out
}

func (st *sharedStore) expireOwner(owner string, b []ending) (_ []ending, ended, alive int) {
	for _, o := range st.ownedBy(owner) {
		var ok, live bool
		if b, ok, live = st.expire(o.id, b); ok {
			ended++
			if live {
				alive++
			}
		}
	}
	return b, ended, alive
}
