package sessionstest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sessionwheel/sessionwheel/sessions"
)

// Store is a shared store (sessions.Store) in this process's memory, for
// tests of code that runs on a shared store such as redisstore: several
// managers given one Store share its sessions as processes share Redis, and
// SetUnavailable makes it fail as an unreachable server does. It keeps time
// by its own clock (like Redis), writes every touch (no slack), and holds a
// claimed ending for Lease before offering it again. It is a fake beside the
// real store, not a stand-in for it: test what matters on Redis against
// Redis.
//
// Make one with NewStore; it is safe for concurrent use.
type Store struct {
	clock sessions.Clock
	lease time.Duration

	mu     sync.Mutex
	cfg    sessions.StoreConfig
	live   map[sessions.ID]*storeEntry
	leased map[sessions.ID]*storeEntry // claimed, not yet acknowledged
	down   bool
	stats  sessions.StoreStats
}

type storeEntry struct {
	rec    sessions.Record
	values map[string][]byte
	reason sessions.Reason
	lease  time.Time // while claimed: when the claim lapses
	claims int
}

// NewStore returns an empty Store keeping time by clock (nil: the system
// clock), whose claims last lease (0: 30 s).
func NewStore(clock sessions.Clock, lease time.Duration) *Store {
	if clock == nil {
		clock = systemClock{}
	}
	if lease <= 0 {
		lease = 30 * time.Second
	}
	return &Store{clock: clock, lease: lease, live: map[sessions.ID]*storeEntry{}, leased: map[sessions.ID]*storeEntry{}}
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }
func (systemClock) AfterFunc(d time.Duration, f func()) sessions.Timer {
	return time.AfterFunc(d, f)
}

// SetUnavailable makes every method fail with an error wrapping
// sessions.ErrUnavailable (down) or work again.
func (s *Store) SetUnavailable(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// enter locks the store and fails if it is down.
func (s *Store) enter(ctx context.Context) (time.Time, error) {
	s.mu.Lock()
	if s.down {
		s.mu.Unlock()
		return time.Time{}, fmt.Errorf("sessionstest: store down: %w", sessions.ErrUnavailable)
	}
	if err := ctx.Err(); err != nil {
		s.mu.Unlock()
		return time.Time{}, fmt.Errorf("sessionstest: %w: %w", sessions.ErrUnavailable, err)
	}
	return s.clock.Now(), nil
}

// Open records the manager's settings. Managers sharing a Store should
// share their timeouts, as processes sharing Redis do.
func (s *Store) Open(cfg sessions.StoreConfig) error {
	s.mu.Lock()
	s.cfg = cfg
	s.mu.Unlock()
	return nil
}

// deadline returns when e ends if touched at t, and why.
func (s *Store) deadline(e *storeEntry, t time.Time) (time.Time, sessions.Reason) {
	idle := e.rec.IdleTimeout
	if idle == 0 {
		idle = s.cfg.IdleTimeout
	}
	d, why := t.Add(idle), sessions.Idle
	if s.cfg.AbsoluteTimeout > 0 {
		if a := e.rec.Created.Add(s.cfg.AbsoluteTimeout); !a.After(d) {
			d, why = a, sessions.Absolute
		}
	}
	return d, why
}

// alive returns the live entry id, or nil.
func (s *Store) alive(id sessions.ID, now time.Time) *storeEntry {
	e := s.live[id]
	if e == nil || !now.Before(e.rec.Deadline) {
		return nil
	}
	return e
}

// Create adds a session created now.
func (s *Store) Create(ctx context.Context, id sessions.ID) (sessions.Record, error) {
	now, err := s.enter(ctx)
	if err != nil {
		return sessions.Record{}, err
	}
	defer s.mu.Unlock()
	if s.live[id] != nil || s.leased[id] != nil {
		return sessions.Record{}, sessions.ErrIDInUse
	}
	e := &storeEntry{rec: sessions.Record{ID: id, Created: now, LastAccess: now}, values: map[string][]byte{}}
	e.rec.Deadline, _ = s.deadline(e, now)
	s.live[id] = e
	return e.rec, nil
}

// Lookup returns the live session id, touched first if touch is set.
func (s *Store) Lookup(ctx context.Context, id sessions.ID, touch bool) (sessions.Record, error) {
	now, err := s.enter(ctx)
	if err != nil {
		return sessions.Record{}, err
	}
	defer s.mu.Unlock()
	e := s.alive(id, now)
	if e == nil {
		return sessions.Record{}, sessions.ErrNotFound
	}
	if touch {
		e.rec.LastAccess = now
		e.rec.Deadline, _ = s.deadline(e, now)
		s.stats.TouchWrites++
	}
	return e.rec, nil
}

// Renew moves the live session id to nid.
func (s *Store) Renew(ctx context.Context, id, nid sessions.ID) (sessions.Record, error) {
	now, err := s.enter(ctx)
	if err != nil {
		return sessions.Record{}, err
	}
	defer s.mu.Unlock()
	e := s.alive(id, now)
	if e == nil {
		return sessions.Record{}, sessions.ErrNotFound
	}
	if s.live[nid] != nil || s.leased[nid] != nil {
		return sessions.Record{}, sessions.ErrIDInUse
	}
	delete(s.live, id)
	e.rec.ID = nid
	e.rec.LastAccess = now
	e.rec.Deadline, _ = s.deadline(e, now)
	s.live[nid] = e
	return e.rec, nil
}

// end moves e to the claimed endings with reason r, leased until now+Lease.
func (s *Store) end(e *storeEntry, r sessions.Reason, now time.Time) sessions.Ending {
	delete(s.live, e.rec.ID)
	e.reason, e.lease = r, now.Add(s.lease)
	e.claims++
	s.leased[e.rec.ID] = e
	return sessions.Ending{ID: e.rec.ID, Reason: r, Lease: e.lease.UnixNano(), Redelivered: e.claims > 1}
}

// Expire ends the live session id and claims its ending.
func (s *Store) Expire(ctx context.Context, id sessions.ID) (sessions.Ending, error) {
	now, err := s.enter(ctx)
	if err != nil {
		return sessions.Ending{}, err
	}
	defer s.mu.Unlock()
	e := s.live[id]
	if e == nil {
		return sessions.Ending{}, sessions.ErrNotFound
	}
	r := sessions.Explicit
	if !now.Before(e.rec.Deadline) {
		_, r = s.deadline(e, e.rec.LastAccess)
	}
	return s.end(e, r, now), nil
}

// entry returns the session id, live or claimed, for reading its values.
func (s *Store) entry(id sessions.ID, now time.Time) *storeEntry {
	if e := s.alive(id, now); e != nil {
		return e
	}
	return s.leased[id]
}

// Value returns the value under key of the session id, live or claimed.
func (s *Store) Value(ctx context.Context, id sessions.ID, key string) ([]byte, error) {
	now, err := s.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	e := s.entry(id, now)
	if e == nil {
		return nil, sessions.ErrNotFound
	}
	v, ok := e.values[key]
	if !ok {
		return nil, sessions.ErrNoValue
	}
	return v, nil
}

// change runs f on the live session id.
func (s *Store) change(ctx context.Context, id sessions.ID, f func(*storeEntry, time.Time)) error {
	now, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	e := s.alive(id, now)
	if e == nil {
		return sessions.ErrNotFound
	}
	f(e, now)
	return nil
}

// SetValue stores value under key.
func (s *Store) SetValue(ctx context.Context, id sessions.ID, key string, value []byte) error {
	return s.change(ctx, id, func(e *storeEntry, _ time.Time) { e.values[key] = append([]byte(nil), value...) })
}

// DeleteValue removes the value under key.
func (s *Store) DeleteValue(ctx context.Context, id sessions.ID, key string) error {
	return s.change(ctx, id, func(e *storeEntry, _ time.Time) { delete(e.values, key) })
}

// SetIdleTimeout gives the session its own idle timeout.
func (s *Store) SetIdleTimeout(ctx context.Context, id sessions.ID, d time.Duration) error {
	return s.change(ctx, id, func(e *storeEntry, _ time.Time) {
		e.rec.IdleTimeout = d
		e.rec.Deadline, _ = s.deadline(e, e.rec.LastAccess)
	})
}

// SetOwner gives the session an owner.
func (s *Store) SetOwner(ctx context.Context, id sessions.ID, owner string) error {
	return s.change(ctx, id, func(e *storeEntry, _ time.Time) { e.rec.Owner = owner })
}

// Owned returns the owner's live sessions.
func (s *Store) Owned(ctx context.Context, owner string) ([]sessions.Record, error) {
	now, err := s.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []sessions.Record
	for _, e := range s.live {
		if e.rec.Owner == owner && now.Before(e.rec.Deadline) {
			out = append(out, e.rec)
		}
	}
	return out, nil
}

// Claim claims up to max due endings: lapsed claims first, then sessions
// past their deadline.
func (s *Store) Claim(ctx context.Context, max int) ([]sessions.Ending, time.Time, error) {
	now, err := s.enter(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer s.mu.Unlock()
	var due []sessions.Ending
	for _, e := range s.leased {
		if len(due) < max && !now.Before(e.lease) {
			due = append(due, s.end(e, e.reason, now))
		}
	}
	var next time.Time
	for _, e := range s.live {
		if !now.Before(e.rec.Deadline) {
			if len(due) < max {
				_, r := s.deadline(e, e.rec.LastAccess)
				due = append(due, s.end(e, r, now))
			}
			continue
		}
		if next.IsZero() || e.rec.Deadline.Before(next) {
			next = e.rec.Deadline
		}
	}
	if len(due) > 0 {
		s.stats.Claims++
	} else {
		s.stats.EmptyClaims++
	}
	for _, e := range due {
		if e.Redelivered {
			s.stats.Redelivered++
		}
	}
	return due, next, nil
}

// Ack drops the acknowledged endings whose claim has not lapsed.
func (s *Store) Ack(ctx context.Context, done []sessions.Ending) error {
	_, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	for _, d := range done {
		e := s.leased[d.ID]
		if e == nil || e.lease.UnixNano() != d.Lease {
			s.stats.LeasesLost++
			continue
		}
		delete(s.leased, d.ID)
	}
	return nil
}

// Len returns the number of sessions not yet ended.
func (s *Store) Len(ctx context.Context) (int, error) {
	if _, err := s.enter(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	return len(s.live), nil
}

// Range calls f for each live session's ID.
func (s *Store) Range(ctx context.Context, f func(sessions.ID) bool) error {
	now, err := s.enter(ctx)
	if err != nil {
		return err
	}
	var ids []sessions.ID
	for id, e := range s.live {
		if now.Before(e.rec.Deadline) {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	for _, id := range ids {
		if !f(id) {
			break
		}
	}
	return nil
}

// Stats returns the store's counters.
func (s *Store) Stats() sessions.StoreStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Close does nothing: the sessions stay for the other managers.
func (s *Store) Close() error { return nil }
