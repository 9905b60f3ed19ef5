package sessions

import (
	"bytes"
	"cmp"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"time"
)

// Owners: which sessions belong to whom (a user, after login), so that a
// server can list a user's sessions, end them all (log out everywhere, as
// OWASP asks after a password change) and bound their number
// (Config.MaxPerOwner).
//
// The index lives beside the arena, in the memStore: a map from owner to
// the set of its sessions' slots, under one lock (ownerIndex.mu). A session
// with an owner keeps its place in the set in its extra, so a session
// without one costs nothing: its record is unchanged, and the paths that end
// it look at its extra as they already did. The index can never hold an
// ended session because the only ways out of the live state (retire, the
// discard of Close, and Renew's release of the old slot, which moves the
// extra and the index entry to the new slot) take the session out of it
// under the same shard lock that ends it.
//
// Lock order: shard locks, in index order, then ownerIndex.mu, which is
// always taken last and never held while a shard lock is taken. The driver
// (retire) holds one shard lock, Renew two; both take ownerIndex.mu inside.
// What must see an owner's sessions at one moment (ExpireOwner, Owned,
// SetOwner under MaxPerOwner) reads which shards hold them, then locks
// those shards in index order, then ownerIndex.mu, and starts again if a
// session joined or moved into a shard it did not lock: every change to an
// owner's set is made holding the session's shard lock and ownerIndex.mu,
// so with those held the set is exact.
//
// Memory: nothing for a session without an owner (one with values or
// callbacks but no owner pays 16 bytes: the ownership field took its extra
// from the 32-byte size class to the 48-byte one). An owned session has an
// extra (shared with its values and callbacks, if any: 48 bytes, and an
// entry in its shard's extras map) and a 16-byte member in its owner's set;
// an owner costs its name, a 48-byte set and a map entry. BenchmarkOwnerMemory
// measures the sum: 122 bytes per owned session, at 1M sessions in 100k
// owners.

// MaxOwnerLen is the longest owner SetOwner accepts, in bytes.
const MaxOwnerLen = 256

// ownership is a session's place in the owner index, kept in its extra.
// set and indexed change only with both the session's shard lock and
// ownerIndex.mu held, so either lock is enough to read them; pos changes
// when another member leaves the set, under ownerIndex.mu alone, and is
// read only under it.
type ownership struct {
	set     *ownerSet // the owner; kept after the session ends, for its callbacks
	pos     int32     // index in set.members while indexed
	indexed bool      // in set.members: the session is live
}

// An ownerSet is one owner's live sessions, in no order.
type ownerSet struct {
	name    string
	members []member
}

// A member is one session of an owner's set: where it lives, and its
// extra, whose ownership.pos follows the member when the set is compacted.
type member struct {
	ex   *extra
	slot uint32
	part uint16
}

// ownerIndex is the memStore's index of owners.
type ownerIndex struct {
	mu      sync.Mutex
	owners  map[string]*ownerSet // only owners with a live session
	owned   int                  // members of all sets
	evicted uint64               // sessions ended as Evicted by Config.MaxPerOwner
}

// add puts the session of ex (in slot of shard part) in set. The caller
// holds the session's shard lock and o.mu.
func (o *ownerIndex) add(set *ownerSet, ex *extra, slot uint32, part uint16) {
	ex.own = ownership{set: set, pos: int32(len(set.members)), indexed: true}
	set.members = append(set.members, member{ex: ex, slot: slot, part: part})
	o.owned++
}

// remove takes the session of ex out of its set, and the set out of the
// index if it was the last. The caller holds the session's shard lock and
// o.mu.
func (o *ownerIndex) remove(ex *extra) {
	set, i := ex.own.set, ex.own.pos
	last := int32(len(set.members) - 1)
	if i != last {
		set.members[i] = set.members[last]
		set.members[i].ex.own.pos = i
	}
	set.members[last] = member{}
	set.members = set.members[:last]
	ex.own.indexed = false
	o.owned--
	switch {
	case len(set.members) == 0:
		delete(o.owners, set.name)
		set.members = nil
	case cap(set.members) > 16 && len(set.members) < cap(set.members)/4:
		// An owner that had many sessions and has few now gives the room back.
		set.members = append([]member(nil), set.members...)
	}
}

// move gives the live session of ex (in slot of shard part) the owner
// ("" for none), leaving its set if it had one. The caller holds the
// session's shard lock and o.mu.
func (o *ownerIndex) move(ex *extra, owner string, slot uint32, part uint16) {
	if ex.own.indexed {
		if ex.own.set.name == owner {
			return
		}
		o.remove(ex)
	}
	ex.own = ownership{}
	if owner == "" {
		return
	}
	set := o.owners[owner]
	if set == nil {
		// A copy: the caller's string may share the memory of a request.
		set = &ownerSet{name: strings.Clone(owner)}
		if o.owners == nil {
			o.owners = map[string]*ownerSet{}
		}
		o.owners[set.name] = set
	}
	o.add(set, ex, slot, part)
}

// disown takes a session that is ending out of the owner index, if it is
// in it. The caller holds the session's shard lock, and not o.mu.
func (st *memStore) disown(ex *extra) {
	if ex == nil || !ex.own.indexed {
		return
	}
	st.own.mu.Lock()
	st.own.remove(ex)
	st.own.mu.Unlock()
}

// disownSlot is disown for the session in slot; nothing but a length
// check for a shard where no session has an extra.
func (st *memStore) disownSlot(sh *shard, slot uint32) {
	if len(sh.extras) != 0 {
		st.disown(sh.extras[slot])
	}
}

// reown points the owner index at the slot Renew moved the session of ex
// to. The caller holds both shards' locks.
func (st *memStore) reown(ex *extra, nsh *shard, nslot uint32) {
	if !ex.own.indexed {
		return
	}
	st.own.mu.Lock()
	ex.own.set.members[ex.own.pos] = member{ex: ex, slot: nslot, part: nsh.num}
	st.own.mu.Unlock()
}

// shardSet is a set of shard numbers.
type shardSet [MaxShards / 64]uint64

func (s *shardSet) add(i uint16)      { s[i/64] |= 1 << (i % 64) }
func (s *shardSet) has(i uint16) bool { return s[i/64]&(1<<(i%64)) != 0 }

// each calls f for each shard in s, in index order.
func (s *shardSet) each(f func(i uint16)) {
	for w, bs := range s {
		for ; bs != 0; bs &= bs - 1 {
			f(uint16(w*64 + bits.TrailingZeros64(bs)))
		}
	}
}

// lockOwner locks the shards that hold owner's sessions, and shard also if
// it is not negative, in index order, then own.mu, and returns owner's set
// (nil if it has none) and the shards it locked, for unlockOwner. With
// these locks held the set cannot change (see the top of this file).
func (st *memStore) lockOwner(owner string, also int) (*ownerSet, shardSet) {
	var want shardSet
	if also >= 0 {
		want.add(uint16(also))
	}
	st.own.mu.Lock()
	if set := st.own.owners[owner]; set != nil {
		for _, mb := range set.members {
			want.add(mb.part)
		}
	}
	st.own.mu.Unlock()
	for {
		locked := want
		locked.each(func(i uint16) { st.shards[i].mu.Lock() })
		st.own.mu.Lock()
		set := st.own.owners[owner]
		complete := true
		if set != nil {
			for _, mb := range set.members {
				if !locked.has(mb.part) {
					want.add(mb.part)
					complete = false
				}
			}
		}
		if complete {
			return set, locked
		}
		// Meanwhile a session in a shard not locked joined the owner, or a
		// Renew moved one there: again with that shard. want only grows,
		// so this ends.
		st.own.mu.Unlock()
		locked.each(func(i uint16) { st.shards[i].mu.Unlock() })
	}
}

// unlockOwner undoes lockOwner.
func (st *memStore) unlockOwner(locked shardSet) {
	st.own.mu.Unlock()
	locked.each(func(i uint16) { st.shards[i].mu.Unlock() })
}

// check reports whether the handle names a live session, not past its end
// at now; the caller holds the handle's shard lock.
func (st *memStore) check(id ID, h ref, now int64) bool {
	sh := &st.shards[h.part]
	if h.slot >= sh.used {
		return false
	}
	r := sh.rec(h.slot)
	if r.gen&^stateMask != h.gen || r.id != id || r.gen&stateMask != stateLive {
		return false
	}
	end, _ := st.endsAt(sh, h.slot, r)
	return now < end
}

// setOwner gives the session of the handle the owner ("" for none), under
// the limit (0: none): see Session.SetOwner. It returns the endings it
// caused (evictions, and overdue sessions of the owner ended on the way)
// and how many sessions it ended.
func (st *memStore) setOwner(id ID, h ref, owner string, limit int, refuse bool, b []ending) ([]ending, int, error) {
	if owner == "" || limit == 0 {
		sh, _, _, err := st.lock(id, h, true)
		if err != nil {
			return b, 0, err
		}
		defer sh.mu.Unlock()
		ex := sh.extra(h.slot, owner != "")
		if ex == nil {
			return b, 0, nil
		}
		st.own.mu.Lock()
		st.own.move(ex, owner, h.slot, sh.num)
		st.own.mu.Unlock()
		if ex.values == nil && ex.notify == nil && ex.own.set == nil {
			delete(sh.extras, h.slot) // back to costing nothing
		}
		return b, 0, nil
	}
	if int(h.part) >= len(st.shards) {
		return b, 0, ErrEnded
	}
	set, locked := st.lockOwner(owner, int(h.part))
	defer st.unlockOwner(locked)
	now := st.tm.now()
	if !st.check(id, h, now) {
		return b, 0, ErrEnded
	}
	sh := &st.shards[h.part]
	ex := sh.extra(h.slot, false) // made below, once the owner takes it
	if ex != nil && ex.own.indexed && ex.own.set == set {
		return b, 0, nil // already the owner's: no new session for it
	}
	ended := 0
	if set != nil {
		// Sessions past their end that the driver has not reached yet do
		// not count against the limit: they end now, as they would have.
		for i := 0; i < len(set.members); {
			mb := set.members[i]
			msh := &st.shards[mb.part]
			if end, _ := st.endsAt(msh, mb.slot, msh.rec(mb.slot)); now < end {
				i++
				continue
			}
			st.own.remove(mb.ex) // moves the last member to i
			b, _ = st.terminate(msh, mb.slot, -1, Idle, now, b)
			ended++
		}
		for len(set.members) >= limit {
			if refuse {
				return b, ended, ErrOwnerLimit
			}
			mb := st.leastRecent(set)
			msh := &st.shards[mb.part]
			st.own.remove(mb.ex)
			b, _ = st.terminate(msh, mb.slot, -1, Evicted, now, b)
			st.own.evicted++
			ended++
		}
	}
	if ex == nil {
		ex = sh.extra(h.slot, true)
	}
	st.own.move(ex, owner, h.slot, sh.num)
	return b, ended, nil
}

// leastRecent returns the member of set touched least recently (to the
// tick), the oldest of those, and of those the one with the least ID. The
// caller holds lockOwner's locks.
func (st *memStore) leastRecent(set *ownerSet) member {
	best := set.members[0]
	bsh := &st.shards[best.part]
	br := bsh.rec(best.slot)
	for _, mb := range set.members[1:] {
		sh := &st.shards[mb.part]
		r := sh.rec(mb.slot)
		if r.access != br.access {
			if r.access > br.access {
				continue
			}
		} else if b, c := *sh.born(mb.slot), *bsh.born(best.slot); b != c {
			if b > c {
				continue
			}
		} else if bytes.Compare(r.id[:], br.id[:]) > 0 {
			continue
		}
		best, bsh, br = mb, sh, r
	}
	return best
}

// expireOwner ends owner's sessions: see Manager.ExpireOwner. ended counts
// every session it ended, alive those that ended as Explicit (the others
// were past their end).
func (st *memStore) expireOwner(owner string, b []ending) (_ []ending, ended, alive int) {
	if owner == "" {
		return b, 0, 0
	}
	set, locked := st.lockOwner(owner, -1)
	defer st.unlockOwner(locked)
	if set == nil {
		return b, 0, 0
	}
	now := st.tm.now()
	members := set.members
	for _, mb := range members {
		mb.ex.own.indexed = false // retire below must not take own.mu: it is held
	}
	st.own.owned -= len(members)
	delete(st.own.owners, owner)
	set.members = nil
	for _, mb := range members {
		var ok bool
		b, ok = st.terminate(&st.shards[mb.part], mb.slot, -1, Explicit, now, b)
		ended++
		if ok {
			alive++
		}
	}
	return b, ended, alive
}

// ownedSession is one of an owner's sessions as ownedBy reads it.
type ownedSession struct {
	id                    ID
	r                     ref
	created, access, ends int64
}

// ownedBy returns owner's live sessions, read at one moment.
func (st *memStore) ownedBy(owner string) []ownedSession {
	if owner == "" {
		return nil
	}
	set, locked := st.lockOwner(owner, -1)
	defer st.unlockOwner(locked)
	if set == nil {
		return nil
	}
	now := st.tm.now()
	out := make([]ownedSession, 0, len(set.members))
	for _, mb := range set.members {
		sh := &st.shards[mb.part]
		r := sh.rec(mb.slot)
		end, _ := st.endsAt(sh, mb.slot, r)
		if now >= end {
			continue // past its end: the driver has not reached it yet
		}
		out = append(out, ownedSession{id: r.id, r: st.refOf(sh, mb.slot, r),
			created: *sh.born(mb.slot), access: st.tm.tickStart(r.access), ends: end})
	}
	return out
}

// ownerOf returns the owner of the session of the handle; it works while
// the session's callbacks run, too.
func (st *memStore) ownerOf(id ID, h ref) (string, error) {
	sh, _, _, err := st.lock(id, h, false)
	if err != nil {
		return "", err
	}
	defer sh.mu.Unlock()
	return slotOwner(sh, h.slot), nil
}

// slotOwner returns the owner of the session in slot, "" if none. The
// caller holds sh.mu. A snapshot of the in-memory store reads owners with
// it.
func slotOwner(sh *shard, slot uint32) string {
	if ex := sh.extra(slot, false); ex != nil && ex.own.set != nil {
		return ex.own.set.name
	}
	return ""
}

// restoreOwner gives the live session in slot the owner, with no limit:
// for a restore from a snapshot, which put the session in slot itself. The
// caller holds sh.mu, and not own.mu.
func (st *memStore) restoreOwner(sh *shard, slot uint32, owner string) error {
	if len(owner) > MaxOwnerLen {
		return ErrInvalidOwner
	}
	if owner == "" {
		return nil
	}
	ex := sh.extra(slot, true)
	st.own.mu.Lock()
	st.own.move(ex, owner, slot, sh.num)
	st.own.mu.Unlock()
	return nil
}

func (o *ownerIndex) addStats(out *Stats) {
	o.mu.Lock()
	out.Owners = len(o.owners)
	out.OwnedSessions = o.owned
	out.OwnerEvictions = o.evicted
	o.mu.Unlock()
}

// SetOwner makes owner (a user name, after a login) the owner of the
// session, so that Manager.Owned lists it and Manager.ExpireOwner ends it.
// A session has at most one owner: SetOwner on a session that has one moves
// it to the new owner (the old one no longer lists it); "" removes the
// owner. Any bytes are allowed, up to MaxOwnerLen; a longer owner is
// refused with ErrInvalidOwner. Renew keeps the owner.
//
// With Config.MaxPerOwner set, an owner's sessions past their end that
// the driver has not yet ended end now (as Idle or Absolute) and do not
// count; if the owner still has MaxPerOwner sessions, its least recently
// used other session ends with reason Evicted (counted in
// Stats.OwnerEvictions), or, under Config.RefuseOverMaxPerOwner, SetOwner
// fails with ErrOwnerLimit and the session keeps the owner it had.
//
// An owned session costs about 120 bytes more than one without (see the
// README); sessions without an owner cost nothing.
func (s Session) SetOwner(owner string) error {
	if s.m == nil {
		return ErrEnded
	}
	if len(owner) > MaxOwnerLen {
		return ErrInvalidOwner
	}
	b, ended, err := s.m.st.setOwner(s.id, s.ref, owner, s.m.cfg.MaxPerOwner, s.m.cfg.RefuseOverMaxPerOwner, nil)
	if ended > 0 {
		s.m.live.Add(-int64(ended))
	}
	if len(b) > 0 { // b is ours (never pooled): an empty one needs no release
		s.m.dispatch(b, false)
	}
	return s.changeErr(err)
}

// Owner returns the session's owner, or "" if it has none or has ended. It
// works in the session's expiry callbacks too.
func (s Session) Owner() string {
	if s.m == nil {
		return ""
	}
	owner, _ := s.m.st.ownerOf(s.id, s.ref)
	return owner
}

// An OwnedSession is one of an owner's sessions, as Manager.Owned saw it.
type OwnedSession struct {
	// Session is the session's handle.
	Session Session
	// Created is when it was created, LastAccess the start of the tick of
	// its last touch, Deadline when it ends unless touched again (as the
	// Session methods of those names return).
	Created, LastAccess, Deadline time.Time
}

// Owned returns owner's live sessions, read at one moment, oldest first
// (ties by ID). It looks only at the owner's own sessions, never at the
// others; "" owns nothing.
func (m *Manager) Owned(owner string) []OwnedSession {
	got := m.st.ownedBy(owner)
	if len(got) == 0 {
		return nil
	}
	// Sorted through small keys: moving the 64-byte elements themselves
	// was half the time of a listing of 1,000.
	order := make([]ownedKey, len(got))
	for i := range got {
		order[i] = ownedKey{got[i].created, int32(i)}
	}
	slices.SortFunc(order, func(a, b ownedKey) int {
		if c := cmp.Compare(a.created, b.created); c != 0 {
			return c
		}
		return bytes.Compare(got[a.i].id[:], got[b.i].id[:])
	})
	out := make([]OwnedSession, len(got))
	for i, k := range order {
		g := &got[k.i]
		out[i] = OwnedSession{Session: m.handle(g.id, g.r), Created: m.tm.timeAt(g.created),
			LastAccess: m.tm.timeAt(g.access), Deadline: m.tm.timeAt(g.ends)}
	}
	return out
}

// ownedKey is what Owned sorts by: the creation time of got[i].
type ownedKey struct {
	created int64
	i       int32
}

// ExpireOwner ends every session of owner alive at the moment it runs, each
// exactly once, with reason Explicit (log out everywhere, as after a
// password change); their callbacks run on the worker pool, and
// ExpireOwner does not wait for them. It returns how many sessions it
// ended that way. A session of owner already past its end but not yet
// ended by the driver ends as Idle (or Absolute) and is not counted, as for
// Expire.
func (m *Manager) ExpireOwner(owner string) int {
	b, ended, alive := m.st.expireOwner(owner, nil)
	if ended > 0 {
		m.live.Add(-int64(ended))
	}
	if len(b) > 0 {
		m.dispatch(b, false)
	}
	return alive
}
