package sessions

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"runtime"
	"time"
)

// Snapshots: the in-memory store written out and read back, so that a
// restart does not end every session.
//
// # Format (version 1)
//
// All integers are little-endian; varints are encoding/binary's, signed
// ones zig-zag. Times are wall-clock Unix nanoseconds, since the manager
// that reads a snapshot has another epoch (and maybe another tick) than the
// one that wrote it.
//
//	header  magic "\x89SWSNAP\n" | version u32 (1) | flags u32 (0)
//	        | tick i64 (ns, the writer's) | taken i64 (when it began)
//	        | crc u32 (CRC-32C of the 32 bytes before it)
//	block   count u32 (>= 1) | length u32 | crc u32 | payload (length bytes,
//	        count sessions); crc is the CRC-32C of count, length and payload
//	trailer count u32 (0) | length u32 (8) | crc u32 | total u64 (sessions)
//
// A session in a payload is
//
//	id [16] | created varint (minus taken) | access varint (minus created)
//	| idle uvarint (ns; 0: the manager's) | owner uvarint length + bytes
//	| values uvarint count, each: key uvarint length + bytes,
//	  value uvarint (0: nil, else 1 + length) + Codec bytes
//
// access is the start of the writer's tick of the last touch, as
// Session.LastAccess reports it. The owner is the session's owner (owners.go),
// empty for none; a restore puts it back in the owner index, without
// applying Config.MaxPerOwner. A bare session takes about 29 bytes.
//
// The trailer's total makes a file cut off at a block boundary as
// detectable as one cut off inside a block; the CRCs catch the rest.
//
// # Consistency
//
// Snapshot copies a shard at most snapshotBatch slots per hold of its
// lock, and encodes with no lock held. A session is saved if it is alive
// when its slot is copied: one that ended (or whose end had come) before
// the snapshot began is never saved, and one created during the snapshot
// may or may not be. Each session is a consistent cut: its times and values
// are those of one moment.
//
// # Restoring
//
// The end of the writer's tick of a session's last touch (access + tick)
// becomes the end of the reader's first tick that is not before it, and the
// creation time is kept, so a restored session ends when it would have,
// never earlier, and at most one of the reader's ticks later (two with an
// own idle timeout, which is rounded up to the reader's ticks). Sessions
// without an own timeout take the reader's Config.IdleTimeout: with a
// shorter one they end sooner, as they would after any touch. Sessions whose
// end has passed are filed as due, and New's first sweep ends them as Idle
// or Absolute.

// Errors of Snapshot and of New with Config.Restore. Compare with
// errors.Is; the message says where in the snapshot the fault is.
var (
	// ErrNotSnapshot: the input does not start like a snapshot (another
	// kind of file, or an empty one).
	ErrNotSnapshot = errors.New("sessions: not a snapshot")
	// ErrSnapshotVersion: a snapshot in a version this package cannot read.
	ErrSnapshotVersion = errors.New("sessions: unsupported snapshot version")
	// ErrSnapshotCorrupt: the snapshot is damaged: cut off (then the error
	// also matches io.ErrUnexpectedEOF), a checksum that does not match, a
	// field out of range, or a session twice.
	ErrSnapshotCorrupt = errors.New("sessions: corrupt snapshot")
	// ErrSnapshotValue: the Codec could not encode a value (Snapshot) or
	// decode one (Restore). The message names the value's key and type,
	// never the session's ID, which is a bearer credential.
	ErrSnapshotValue = errors.New("sessions: snapshot value")
)

const (
	snapshotMagic   = "\x89SWSNAP\n"
	snapshotVersion = 1
	headerLen       = 36
	blockHeaderLen  = 12
	// maxBlock bounds a block's payload, so that a damaged length never
	// makes the reader allocate more than this.
	maxBlock = 64 << 20
	// blockTarget is the payload size at which the writer ends a block:
	// a CRC every 64 KiB, and a write that size.
	blockTarget = 64 << 10
	// minSessionLen is the shortest encoding of a session: its 16-byte ID
	// and five one-byte varints.
	minSessionLen = 16 + 5
	// snapshotBatch bounds the slots Snapshot copies per hold of a shard's
	// lock: about 4 µs without values, so that a touch never waits long
	// behind it. snapshotValueBatch bounds the sessions with values among
	// them: each costs about 0.8 µs (a few cache misses: the extras map,
	// the values map), which made 256 of them a hold of 200 µs.
	snapshotBatch      = 256
	snapshotValueBatch = 32
	// maxWall bounds the wall times in a snapshot, so that the arithmetic
	// on them cannot overflow: about ±146 years around 1970. The writer
	// clamps to it (a time past 2116 is no real session's), so that what
	// it writes its reader accepts, and the difference of two such times
	// fits an int64.
	maxWall = 1<<62 - 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// A savedSession is a session copied out of its shard for a snapshot:
// times in the manager's nanoseconds.
type savedSession struct {
	id     ID
	born   int64
	access int64  // start of the tick of the last touch
	idle   int64  // own idle timeout in ns; 0: the manager's
	owner  string // "": none
	values []keyValue
}

type keyValue struct {
	key string
	v   any
}

// A snapshotter is a store that can copy its sessions out: the in-memory
// one.
type snapshotter interface {
	// copyOut calls f with the live sessions in batches, holding no lock
	// while f runs, until f returns an error. If hold is not nil, it is
	// told how long each lock was held.
	copyOut(f func([]savedSession) error, hold func(time.Duration)) error
}

// Snapshot writes every live session to w: its ID, creation time, last
// access, own idle timeout and values (encoded by Config.Codec), while the
// manager goes on serving. Callbacks registered with NotifyOnExpire cannot
// be written: a program that restores must register them again. Values
// are encoded after they are copied out of the session, with no lock held:
// a value that is a pointer must not be changed while Snapshot runs.
//
// Snapshot fails with ErrSnapshotValue if a value cannot be encoded (the
// error names its key and type), with ErrClosed if Close began before or
// during it, or with w's error; what it has written is then not a
// snapshot. Config.Restore reads a snapshot back into a new manager. On a
// shared Store, which keeps the sessions itself, Snapshot fails with an
// error wrapping errors.ErrUnsupported.
func (m *Manager) Snapshot(w io.Writer) error {
	return m.snapshot(w, nil)
}

// snapshot is Snapshot, telling hold (if not nil) how long each hold of a
// shard's lock lasted: the benchmarks' measure of what a touch may wait.
func (m *Manager) snapshot(w io.Writer, hold func(time.Duration)) error {
	if m.shared != nil {
		return errSnapshotShared
	}
	if m.closed.Load() {
		return ErrClosed
	}
	src, ok := m.st.(snapshotter)
	if !ok {
		return errors.New("sessions: this store cannot be snapshot")
	}
	enc := snapshotEncoder{
		w:         w,
		codec:     m.cfg.Codec,
		epochWall: m.tm.epoch.UnixNano(),
		taken:     m.tm.timeAt(m.tm.now()).UnixNano(),
	}
	if err := enc.header(m.tm.tick); err != nil {
		return err
	}
	if err := src.copyOut(enc.add, hold); err != nil {
		return err
	}
	if m.closed.Load() {
		// Close emptied shards under the copy: what was written is not
		// every session.
		return ErrClosed
	}
	return enc.finish()
}

// snapshotEncoder writes a snapshot's blocks.
type snapshotEncoder struct {
	w                io.Writer
	codec            Codec
	epochWall, taken int64
	buf              []byte // the block being filled, after room for its header
	n                uint32 // sessions in it
	total            uint64
}

func (e *snapshotEncoder) header(tick int64) error {
	h := make([]byte, 0, headerLen)
	h = append(h, snapshotMagic...)
	h = binary.LittleEndian.AppendUint32(h, snapshotVersion)
	h = binary.LittleEndian.AppendUint32(h, 0)
	h = binary.LittleEndian.AppendUint64(h, uint64(tick))
	h = binary.LittleEndian.AppendUint64(h, uint64(e.taken))
	h = binary.LittleEndian.AppendUint32(h, crc32.Checksum(h, castagnoli))
	_, err := e.w.Write(h)
	e.buf = make([]byte, blockHeaderLen, blockTarget+blockTarget/4)
	return err
}

func (e *snapshotEncoder) add(batch []savedSession) error {
	for i := range batch {
		s := &batch[i]
		start := len(e.buf)
		created, access := e.wall(s.born), e.wall(s.access)
		e.buf = append(e.buf, s.id[:]...)
		e.buf = binary.AppendVarint(e.buf, created-e.taken)
		e.buf = binary.AppendVarint(e.buf, access-created)
		e.buf = binary.AppendUvarint(e.buf, uint64(s.idle))
		e.buf = binary.AppendUvarint(e.buf, uint64(len(s.owner)))
		e.buf = append(e.buf, s.owner...)
		e.buf = binary.AppendUvarint(e.buf, uint64(len(s.values)))
		for _, kv := range s.values {
			e.buf = binary.AppendUvarint(e.buf, uint64(len(kv.key)))
			e.buf = append(e.buf, kv.key...)
			if kv.v == nil {
				e.buf = binary.AppendUvarint(e.buf, 0)
				continue
			}
			if err := e.value(kv.v); err != nil {
				return fmt.Errorf("%w: cannot encode the value under key %q, of type %T: %w", ErrSnapshotValue, kv.key, kv.v, err)
			}
		}
		if len(e.buf)-start > maxBlock-binary.MaxVarintLen64 {
			return fmt.Errorf("%w: a session's values take %d bytes, more than a snapshot allows (%d)", ErrSnapshotValue, len(e.buf)-start, maxBlock)
		}
		if len(e.buf)-blockHeaderLen > maxBlock {
			// This session does not fit the block: it starts the next.
			tail := append([]byte(nil), e.buf[start:]...)
			e.buf = e.buf[:start]
			if err := e.flush(); err != nil {
				return err
			}
			e.buf = append(e.buf, tail...)
		}
		e.n++
		e.total++
		if len(e.buf)-blockHeaderLen >= blockTarget {
			if err := e.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// wall converts a time of the manager's to wall-clock Unix nanoseconds,
// clamped to ±maxWall. A restored time may lie far out (the arithmetic of
// the time model saturates), and the sum must not overflow.
func (e *snapshotEncoder) wall(t int64) int64 {
	w, ok := addChecked(e.epochWall, t)
	if !ok {
		w = t // the overflow's sign is t's
	}
	return min(max(w, -maxWall), maxWall)
}

// addChecked returns a+b, and false if it overflows.
func addChecked(a, b int64) (int64, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}

// value appends a value's length + 1 and its encoding to the block. A
// codec that can append does so in place: no allocation per value.
func (e *snapshotEncoder) value(v any) error {
	if ac, ok := e.codec.(appendCodec); ok {
		// Room for the length, which is known only after: a varint of at
		// most 5 bytes for a value under maxBlock, moved down if shorter.
		at := len(e.buf)
		e.buf = append(e.buf, 0, 0, 0, 0, 0)
		b, err := ac.AppendMarshal(e.buf, v)
		if err != nil {
			e.buf = e.buf[:at]
			return err
		}
		n := len(b) - at - 5
		var l [binary.MaxVarintLen32]byte
		k := binary.PutUvarint(l[:], uint64(n)+1)
		copy(b[at:], l[:k])
		e.buf = append(b[:at+k], b[at+5:]...)
		return nil
	}
	b, err := e.codec.Marshal(v)
	if err != nil {
		return err
	}
	e.buf = binary.AppendUvarint(e.buf, uint64(len(b))+1)
	e.buf = append(e.buf, b...)
	return nil
}

// flush writes the block being filled, if it holds any session.
func (e *snapshotEncoder) flush() error {
	if e.n == 0 {
		return nil
	}
	err := e.writeBlock(e.n, e.buf)
	e.buf, e.n = e.buf[:blockHeaderLen], 0
	return err
}

// writeBlock fills in the header of b (whose first blockHeaderLen bytes
// are room for it) and writes it.
func (e *snapshotEncoder) writeBlock(count uint32, b []byte) error {
	binary.LittleEndian.PutUint32(b[0:], count)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-blockHeaderLen))
	crc := crc32.Checksum(b[:8], castagnoli)
	crc = crc32.Update(crc, castagnoli, b[blockHeaderLen:])
	binary.LittleEndian.PutUint32(b[8:], crc)
	_, err := e.w.Write(b)
	return err
}

func (e *snapshotEncoder) finish() error {
	if err := e.flush(); err != nil {
		return err
	}
	t := make([]byte, blockHeaderLen, blockHeaderLen+8)
	t = binary.LittleEndian.AppendUint64(t, e.total)
	return e.writeBlock(0, t)
}

// copyOut copies each shard's live sessions, snapshotBatch slots per hold
// of its lock, and hands them to f with no lock held. A session whose end
// has come is left out: it has ended, whether or not the driver has seen
// it yet.
func (st *memStore) copyOut(f func([]savedSession) error, hold func(time.Duration)) error {
	batch := make([]savedSession, 0, snapshotBatch)
	// The values of a batch, which its sessions' values slice: reused, so
	// that copying allocates nothing in the steady state. An allocation
	// under the lock may be made to assist the garbage collector, which
	// with a heap of a million value maps took tens of milliseconds.
	var kvs []keyValue
	for i := range st.shards {
		sh := &st.shards[i]
		for slot := uint32(0); ; {
			batch, kvs = batch[:0], kvs[:0]
			sh.mu.Lock()
			var start time.Time
			if hold != nil {
				start = time.Now()
			}
			now := st.tm.now()
			end := min(slot+snapshotBatch, sh.used)
			for heavy := 0; slot < end && heavy < snapshotValueBatch; slot++ {
				r := sh.rec(slot)
				if r.gen&stateMask != stateLive {
					continue
				}
				if e, _ := st.endsAt(sh, slot, r); now >= e {
					continue
				}
				s := savedSession{id: r.id, born: *sh.born(slot), access: st.tm.tickStart(r.access), idle: int64(r.idle) * st.tm.tick, owner: slotOwner(sh, slot)}
				if ex := sh.extras[slot]; ex != nil && len(ex.values) > 0 {
					from := len(kvs)
					for k, v := range ex.values {
						kvs = append(kvs, keyValue{k, v})
					}
					s.values = kvs[from:len(kvs):len(kvs)]
					heavy++
				}
				batch = append(batch, s)
			}
			last := slot >= sh.used
			if hold != nil {
				hold(time.Since(start))
			}
			sh.mu.Unlock()
			if err := f(batch); err != nil {
				return err
			}
			if last {
				break
			}
			// Yield with no lock held, as the sweep does (memstore.go): a
			// goroutine preempted inside a batch would hold the shard's
			// lock for a whole time slice of whatever runs instead.
			runtime.Gosched()
		}
	}
	return nil
}

// restoreInto reads the snapshot in r into st, which belongs to a manager
// that has not started, and returns the number of sessions. Nothing is
// ended here: sessions whose end has passed are filed under it, and the
// manager's first sweep ends them. On error st is to be thrown away.
func (m *Manager) restoreInto(st *memStore, r io.Reader) (int, error) {
	d := snapshotDecoder{r: bufio.NewReaderSize(r, 256<<10), m: m, st: st, epochWall: m.tm.epoch.UnixNano()}
	return d.run()
}

// snapshotDecoder reads a snapshot, keeping track of where it is so that
// every error can say so.
type snapshotDecoder struct {
	r         *bufio.Reader
	m         *Manager
	st        *memStore
	epochWall int64
	tick      int64 // the writer's
	taken     int64
	off       int64 // bytes read so far
	block     int   // number of the block being read, from 1
	buf       []byte
	n         int // sessions restored
}

func (d *snapshotDecoder) corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrSnapshotCorrupt, fmt.Sprintf(format, args...))
}

// read fills b, reporting a cut-off input as corrupt.
func (d *snapshotDecoder) read(b []byte, what string) error {
	n, err := io.ReadFull(d.r, b)
	d.off += int64(n)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: truncated: %s cut off at byte %d: %w", ErrSnapshotCorrupt, what, d.off, io.ErrUnexpectedEOF)
	default:
		return fmt.Errorf("sessions: reading snapshot at byte %d: %w", d.off, err)
	}
}

func (d *snapshotDecoder) run() (int, error) {
	var h [headerLen]byte
	n, err := io.ReadFull(d.r, h[:])
	d.off = int64(n)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return 0, fmt.Errorf("sessions: reading snapshot: %w", err)
	}
	if n < len(snapshotMagic) || string(h[:len(snapshotMagic)]) != snapshotMagic {
		return 0, fmt.Errorf("%w: the first %d bytes are %q, not the snapshot magic", ErrNotSnapshot, min(n, len(snapshotMagic)), h[:min(n, len(snapshotMagic))])
	}
	if n < headerLen {
		return 0, fmt.Errorf("%w: truncated: header cut off at byte %d: %w", ErrSnapshotCorrupt, n, io.ErrUnexpectedEOF)
	}
	le := binary.LittleEndian
	if crc := crc32.Checksum(h[:32], castagnoli); crc != le.Uint32(h[32:]) {
		return 0, d.corrupt("header checksum %08x, computed %08x", le.Uint32(h[32:]), crc)
	}
	if v := le.Uint32(h[8:]); v != snapshotVersion {
		return 0, fmt.Errorf("%w: version %d, this program reads version %d", ErrSnapshotVersion, v, snapshotVersion)
	}
	if f := le.Uint32(h[12:]); f != 0 {
		return 0, fmt.Errorf("%w: unknown flags %#x in the header", ErrSnapshotVersion, f)
	}
	d.tick, d.taken = int64(le.Uint64(h[16:])), int64(le.Uint64(h[24:]))
	if d.tick < int64(MinTick) || d.tick > int64(MaxTimeout) {
		return 0, d.corrupt("header: tick %d ns out of range", d.tick)
	}
	if d.taken < -maxWall || d.taken > maxWall {
		return 0, d.corrupt("header: time %d out of range", d.taken)
	}
	for d.block = 1; ; d.block++ {
		at := d.off
		var bh [blockHeaderLen]byte
		if err := d.read(bh[:], fmt.Sprintf("header of block %d", d.block)); err != nil {
			return 0, err
		}
		count, length := le.Uint32(bh[0:]), le.Uint32(bh[4:])
		if length > maxBlock {
			return 0, d.corrupt("block %d at byte %d: length %d is above the limit %d", d.block, at, length, maxBlock)
		}
		if count == 0 && length != 8 {
			return 0, d.corrupt("trailer (block %d) at byte %d: length %d, not 8", d.block, at, length)
		}
		if count > length/minSessionLen {
			return 0, d.corrupt("block %d at byte %d: %d sessions cannot fit in %d bytes", d.block, at, count, length)
		}
		if cap(d.buf) < int(length) {
			d.buf = make([]byte, length)
		}
		p := d.buf[:length]
		if err := d.read(p, fmt.Sprintf("block %d (at byte %d)", d.block, at)); err != nil {
			return 0, err
		}
		crc := crc32.Checksum(bh[:8], castagnoli)
		if crc = crc32.Update(crc, castagnoli, p); crc != le.Uint32(bh[8:]) {
			return 0, d.corrupt("block %d at byte %d: checksum %08x, computed %08x", d.block, at, le.Uint32(bh[8:]), crc)
		}
		if count == 0 {
			if total := le.Uint64(p); total != uint64(d.n) {
				return 0, d.corrupt("trailer at byte %d: %d sessions, but the blocks hold %d", at, total, d.n)
			}
			if _, err := d.r.ReadByte(); err != io.EOF {
				return 0, d.corrupt("data after the trailer, at byte %d", d.off)
			}
			return d.n, nil
		}
		if err := d.sessions(p, count, at); err != nil {
			return 0, err
		}
	}
}

// sessions restores the count sessions of the payload p of a block that
// starts at byte at.
func (d *snapshotDecoder) sessions(p []byte, count uint32, at int64) error {
	b := byteReader{p: p}
	for i := range count {
		start := b.i
		bad := func(what string) error {
			return d.corrupt("block %d at byte %d, session %d (byte %d of the block): %s", d.block, at, i, start, what)
		}
		var id ID
		if !b.bytes(id[:]) {
			return bad("ID cut off")
		}
		rel, ok1 := b.varint()
		acc, ok2 := b.varint()
		idle, ok3 := b.uvarint()
		owner, ok4 := b.uvarint()
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return bad("bad varint")
		}
		created, ok1 := addChecked(d.taken, rel)
		access, ok2 := addChecked(created, acc)
		if !ok1 || !ok2 || created < -maxWall || created > maxWall || access < -maxWall || access > maxWall {
			return bad("time out of range")
		}
		if idle > uint64(MaxTimeout) {
			return bad(fmt.Sprintf("idle timeout %d ns above MaxTimeout", idle))
		}
		if owner > uint64(len(p)) {
			return bad("owner cut off")
		}
		ownerBytes, ok := b.take(int(owner))
		if !ok {
			return bad("owner cut off")
		}
		nv, ok := b.uvarint()
		if !ok || nv > uint64(len(p)-b.i)/2 { // a value takes 2 bytes at least
			return bad("bad number of values")
		}
		var values map[string]any
		for range nv {
			kl, ok := b.uvarint()
			if !ok || kl > uint64(len(p)) {
				return bad("bad key length")
			}
			key, ok := b.take(int(kl))
			if !ok {
				return bad("key cut off")
			}
			vl, ok := b.uvarint()
			if !ok || vl > uint64(len(p))+1 {
				return bad("bad value length")
			}
			var v any
			if vl > 0 {
				data, ok := b.take(int(vl - 1))
				if !ok {
					return bad("value cut off")
				}
				var err error
				if v, err = d.m.cfg.Codec.Unmarshal(data); err != nil {
					return fmt.Errorf("%w: cannot decode the value under key %q (block %d at byte %d, session %d): %w", ErrSnapshotValue, key, d.block, at, i, err)
				}
			}
			if values == nil {
				values = make(map[string]any, min(nv, 8)) // nv is not trusted yet
			}
			values[string(key)] = v
		}
		if err := d.restore(id, created, access, idle, string(ownerBytes), values); err != nil {
			if errors.Is(err, errDuplicate) {
				return bad("a session seen before")
			}
			return err
		}
	}
	if b.i != len(p) {
		return d.corrupt("block %d at byte %d: %d bytes after its %d sessions", d.block, at, len(p)-b.i, count)
	}
	return nil
}

var errDuplicate = errors.New("duplicate")

// restore puts one session in the store, its wall times converted to the
// manager's: the end of the tick of its last touch maps to the end of a
// tick of this manager at or after it, so that no session ends earlier
// than it would have (it may end up to one tick later).
func (d *snapshotDecoder) restore(id ID, created, access int64, idle uint64, owner string, values map[string]any) error {
	m := d.m
	if limit := m.cfg.MaxSessions; limit > 0 && d.n >= limit {
		return fmt.Errorf("%w: the snapshot holds more than MaxSessions (%d) sessions (block %d)", ErrTooManySessions, limit, d.block)
	}
	tm := m.tm
	var ownIdle uint32
	if idle != 0 {
		t := ticks(time.Duration(idle), time.Duration(tm.tick))
		if t > math.MaxUint32 {
			return fmt.Errorf("%w: a restored session's idle timeout %v is more than 2^32 ticks of %v", ErrInvalidConfig, time.Duration(idle), time.Duration(tm.tick))
		}
		ownIdle = uint32(t)
	}
	born := created - d.epochWall
	touchedBy := access + d.tick - d.epochWall // end of the writer's tick of the last touch
	acc := tm.roundUp(touchedBy)/tm.tick - 1
	if err := d.st.restore(id, born, acc, ownIdle, owner, values); err != nil {
		return err
	}
	d.n++
	return nil
}

// restore adds a session read from a snapshot, through the same steps as
// create but with the ID and times given. It reports errDuplicate for an
// ID already there, ErrTooManySessions when the shard is full, and
// ErrInvalidOwner for an owner longer than MaxOwnerLen.
func (st *memStore) restore(id ID, born, access int64, idle uint32, owner string, values map[string]any) error {
	sh := st.shardOf(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, _, ok := sh.find(id); ok {
		return errDuplicate
	}
	slot, ok := sh.alloc()
	if !ok {
		return fmt.Errorf("%w: a shard of the table is full (%d sessions)", ErrTooManySessions, MaxShardSessions)
	}
	r := sh.rec(slot)
	*r = record{id: id, access: access, idle: idle, gen: r.gen&^stateMask + genStep | stateLive}
	*sh.born(slot) = born
	if values != nil {
		sh.extra(slot, true).values = values
	}
	sh.index(id, slot)
	if err := st.restoreOwner(sh, slot, owner); err != nil {
		sh.unindexSlot(id, slot, -1)
		sh.release(slot)
		return err
	}
	end, _ := st.endsAt(sh, slot, r)
	st.file(sh, slot, end)
	return nil
}

// A byteReader reads a block's payload.
type byteReader struct {
	p []byte
	i int
}

func (b *byteReader) bytes(dst []byte) bool {
	if len(b.p)-b.i < len(dst) {
		return false
	}
	b.i += copy(dst, b.p[b.i:])
	return true
}

func (b *byteReader) take(n int) ([]byte, bool) {
	if n < 0 || len(b.p)-b.i < n {
		return nil, false
	}
	b.i += n
	return b.p[b.i-n : b.i], true
}

func (b *byteReader) varint() (int64, bool) {
	v, n := binary.Varint(b.p[b.i:])
	if n <= 0 {
		return 0, false
	}
	b.i += n
	return v, true
}

func (b *byteReader) uvarint() (uint64, bool) {
	v, n := binary.Uvarint(b.p[b.i:])
	if n <= 0 {
		return 0, false
	}
	b.i += n
	return v, true
}
