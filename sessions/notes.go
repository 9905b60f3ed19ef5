package sessions

import "unsafe"

// Per-session callbacks (NotifyOnExpire) that many sessions share cost a
// small number per session instead of an entry in the shard's extras: the
// Twisted idiom registers one callback per session, and kept in extras
// that is some 80 bytes and a pointer for the garbage collector to follow
// per session (a forced GC at 1M sessions: 376 ms instead of 6).
//
// A session's first callback is interned in its shard, keyed by the
// address of the func value's closure: two func values with the same
// address are the same closure (same code, same captured variables), so
// sharing the entry cannot change what runs. Func values that merely
// behave alike (two closures over equal variables, a method value
// evaluated twice) have different addresses and get entries of their own,
// which is correct and costs about what extras did. The note holds the
// func, so the closure, and with it its address, lives as long as the key
// does. A second callback moves the session to extras, in order.
type note struct {
	key  uintptr                   // the closure's address
	fn   *[1]func(Session, Reason) // the func, as a list for endings: fn[:]
	refs uint32                    // the sessions that hold it
}

func funcKey(f func(Session, Reason)) uintptr {
	return *(*uintptr)(unsafe.Pointer(&f))
}

// noteFuncs returns the callback list of slot's note, or nil.
func (s *shard) noteFuncs(slot uint32) []func(Session, Reason) {
	c := int(slot >> recChunkBits)
	if c >= len(s.noteOf) || s.noteOf[c] == nil {
		return nil
	}
	if n := s.noteOf[c][slot&(recChunkLen-1)]; n != 0 {
		return s.notes[n-1].fn[:]
	}
	return nil
}

// setNote gives slot note number n (0: none), dropping the one it had.
func (s *shard) setNote(slot, n uint32) {
	c := int(slot >> recChunkBits)
	if c >= len(s.noteOf) || s.noteOf[c] == nil {
		if n == 0 {
			return
		}
		for c >= len(s.noteOf) {
			s.noteOf = append(s.noteOf, nil)
		}
		var a *arena
		if s.mem != nil {
			a = &s.mem.chunks
		}
		s.noteOf[c] = allocSlice[uint32](a, recChunkLen, 64)
	}
	p := &s.noteOf[c][slot&(recChunkLen-1)]
	if old := *p; old != 0 {
		s.unref(old)
	}
	*p = n
}

// intern returns the number of f's note, made if needed, counting one more
// holder.
func (s *shard) intern(f func(Session, Reason)) uint32 {
	k := funcKey(f)
	if n, ok := s.noteNums[k]; ok {
		s.notes[n-1].refs++
		return n
	}
	var n uint32
	if k := len(s.freeNums); k > 0 {
		n, s.freeNums = s.freeNums[k-1], s.freeNums[:k-1]
	} else {
		s.notes = append(s.notes, note{})
		n = uint32(len(s.notes))
	}
	s.notes[n-1] = note{key: k, fn: &[1]func(Session, Reason){f}, refs: 1}
	if s.noteNums == nil {
		s.noteNums = map[uintptr]uint32{}
	}
	s.noteNums[k] = n
	return n
}

func (s *shard) unref(n uint32) {
	nt := &s.notes[n-1]
	if nt.refs--; nt.refs == 0 {
		delete(s.noteNums, nt.key)
		*nt = note{}
		s.freeNums = append(s.freeNums, n)
	}
}

// addNotify registers f for slot's ending, after its other callbacks.
func (s *shard) addNotify(slot uint32, f func(Session, Reason)) {
	ex := s.extra(slot, false)
	if ex == nil || ex.notify == nil {
		fs := s.noteFuncs(slot)
		if fs == nil {
			s.setNote(slot, s.intern(f))
			return
		}
		ex = s.extra(slot, true)
		ex.notify = append(ex.notify, fs[0])
		s.setNote(slot, 0)
	}
	ex.notify = append(ex.notify, f)
}
