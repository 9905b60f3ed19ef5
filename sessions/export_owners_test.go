package sessions

import "fmt"

// OwnerIndex returns the owner index as it stands, each owner's session
// IDs, including sessions past their end that the driver has not ended
// yet; and an error if the index disagrees with itself (a member whose
// extra does not point back at it, a slot that is not live, a count off,
// an owner with no session). Tests call it with no other goroutine at work.
func OwnerIndex(m *Manager) (map[string][]ID, error) {
	st := m.st.(*memStore)
	st.own.mu.Lock()
	var names []string
	for name := range st.own.owners {
		names = append(names, name)
	}
	st.own.mu.Unlock()
	out := map[string][]ID{}
	total := 0
	for _, name := range names {
		set, locked := st.lockOwner(name, -1)
		if set == nil {
			st.unlockOwner(locked)
			continue
		}
		if set.name != name || len(set.members) == 0 {
			st.unlockOwner(locked)
			return nil, fmt.Errorf("owner %q: set named %q with %d members", name, set.name, len(set.members))
		}
		for i, mb := range set.members {
			sh := &st.shards[mb.part]
			r := sh.rec(mb.slot)
			switch {
			case r.gen&stateMask != stateLive:
				st.unlockOwner(locked)
				return nil, fmt.Errorf("owner %q: member %d in a slot that is not live", name, i)
			case sh.extras[mb.slot] != mb.ex:
				st.unlockOwner(locked)
				return nil, fmt.Errorf("owner %q: member %d is not its slot's extra", name, i)
			case !mb.ex.own.indexed || mb.ex.own.set != set || mb.ex.own.pos != int32(i):
				st.unlockOwner(locked)
				return nil, fmt.Errorf("owner %q: member %d has ownership %+v", name, i, mb.ex.own)
			}
			out[name] = append(out[name], r.id)
		}
		total += len(set.members)
		st.unlockOwner(locked)
	}
	st.own.mu.Lock()
	owned := st.own.owned
	st.own.mu.Unlock()
	if owned != total {
		return nil, fmt.Errorf("owned count %d, members %d", owned, total)
	}
	return out, nil
}

// SlotOwnerOf reads the owner of the slot of s as a snapshot of the
// in-memory store does (slotOwner, under the shard lock).
func SlotOwnerOf(s Session) string {
	st := s.m.st.(*memStore)
	sh := &st.shards[s.ref.part]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return slotOwner(sh, s.ref.slot)
}

// RestoreOwner gives the slot of s an owner as a restore from a snapshot
// does (memStore.restoreOwner, under the shard lock, with no limit).
func RestoreOwner(s Session, owner string) error {
	st := s.m.st.(*memStore)
	sh := &st.shards[s.ref.part]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return st.restoreOwner(sh, s.ref.slot, owner)
}

// SideRecords returns how many sessions have an extra (values, callbacks
// or an owner) beside their record.
func SideRecords(m *Manager) int {
	st := m.st.(*memStore)
	n := 0
	for i := range st.shards {
		sh := &st.shards[i]
		sh.mu.Lock()
		n += len(sh.extras)
		sh.mu.Unlock()
	}
	return n
}
