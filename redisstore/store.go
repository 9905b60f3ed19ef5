package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"github.com/sessionwheel/sessionwheel/sessions"
)

// Store is a sessions.Store on Redis, standalone or Redis Cluster. Make one
// with New and give it to sessions.Config.Store; several processes, each
// with its own Store on the same Redis and Options, share the sessions.
type Store struct {
	c      rueidis.Client
	o      Options
	mask   int
	keys   []bucketKeys
	clocks []clock
	start  time.Time
	st     stats
	rot    atomic.Uint32
	hints  hints // see lookupTouchScript

	// From Open: the manager's timeouts, in ms, and the slack.
	idleMs, absMs, slackMs int64
	graceMs, leaseMs       string
}

// bucketKeys are the keys, and prefixes of keys, of one bucket.
type bucketKeys struct {
	due, lease, hash, owner string
}

var _ sessions.Store = (*Store)(nil)

// New returns a Store on the client c, which may be a standalone or a
// cluster client; the Store never closes it (Close leaves it to the
// caller, who may share it). Options' zero fields take their defaults; an
// invalid one makes New fail with an error wrapping ErrInvalidOptions.
//
// New asks the server, best effort, for hash-max-listpack-value and logs a
// warning to Options.Logger if it is below 128: values up to that size
// keep a session's hash in the compact listpack encoding (see the package
// documentation on sizing).
func New(c rueidis.Client, o Options) (*Store, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: nil client", ErrInvalidOptions)
	}
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Store{
		c: c, o: o, mask: o.Buckets - 1,
		keys:    make([]bucketKeys, o.Buckets),
		clocks:  make([]clock, o.Buckets),
		hints:   make(hints, hintSlots),
		start:   time.Now(),
		graceMs: strconv.FormatInt(o.Grace.Milliseconds(), 10),
		leaseMs: strconv.FormatInt(o.Lease.Milliseconds(), 10),
	}
	for b := range s.keys {
		tag := "{" + o.Prefix + ":" + strconv.Itoa(b) + "}"
		s.keys[b] = bucketKeys{due: tag + ":due", lease: tag + ":lease", hash: tag + ":s:", owner: tag + ":o:"}
	}
	s.checkListpack()
	return s, nil
}

// listpackWant is the hash-max-listpack-value below which New warns.
const listpackWant = 128

func (s *Store) checkListpack() {
	ctx, cancel := context.WithTimeout(context.Background(), s.o.Timeout)
	defer cancel()
	m, err := s.c.Do(ctx, s.c.B().ConfigGet().Parameter("hash-max-listpack-value").Build()).AsStrMap()
	if err != nil {
		return // best effort: a managed Redis may refuse CONFIG
	}
	if v, err := strconv.Atoi(m["hash-max-listpack-value"]); err == nil && v < listpackWant {
		s.o.Logger.Warn("redisstore: hash-max-listpack-value is below 128: a session whose values exceed it costs about 60% more memory",
			"hash-max-listpack-value", v)
	}
}

// Open takes the manager's timeouts and tick (the default Slack).
func (s *Store) Open(cfg sessions.StoreConfig) error {
	if cfg.IdleTimeout <= 0 || cfg.AbsoluteTimeout < 0 || cfg.Tick < 0 {
		return fmt.Errorf("%w: store config %+v", ErrInvalidOptions, cfg)
	}
	s.idleMs = ceilMs(cfg.IdleTimeout)
	s.absMs = ceilMs(cfg.AbsoluteTimeout)
	slack := s.o.Slack
	if slack == 0 {
		slack = cfg.Tick
	}
	s.slackMs = ceilMs(slack)
	return nil
}

// Close does nothing: the Store holds nothing of its own, and it does not
// close the client, which New's caller owns. The sessions stay in Redis.
func (s *Store) Close() error { return nil }

// ceilMs is d in whole milliseconds, rounded up: a timeout is never
// shortened.
func ceilMs(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// bucket is the bucket of id: a function of its first byte, so that Renew
// can keep a session in its bucket (see Renew).
func (s *Store) bucket(id sessions.ID) int { return int(id[0]) & s.mask }

func (s *Store) hashKey(b int, id string) string { return s.keys[b].hash + id }

// errReply is a reply of the wrong shape: a bug or a foreign key, not an
// unavailable server.
var errReply = errors.New("redisstore: unexpected reply")

// fail wraps err for op: sessions.ErrUnavailable for anything that says
// the server could not be reached or did not answer (connection errors,
// timeouts, a cluster without a master for the slot, a server loading or
// read-only after a failover), the error itself otherwise.
func fail(op op, err error) error {
	if err == nil {
		return nil
	}
	if re, ok := rueidis.IsRedisErr(err); ok {
		msg := re.Error()
		if re.IsClusterDown() || re.IsTryAgain() || re.IsLoading() ||
			strings.HasPrefix(msg, "MASTERDOWN") || strings.HasPrefix(msg, "READONLY") ||
			strings.HasPrefix(msg, "BUSY") || strings.HasPrefix(msg, "NOREPLICAS") {
			return fmt.Errorf("redisstore: %s: %w: %w", opNames[op], sessions.ErrUnavailable, err)
		}
		return fmt.Errorf("redisstore: %s: %w", opNames[op], err)
	}
	if errors.Is(err, errReply) {
		return fmt.Errorf("redisstore: %s: %w", opNames[op], err)
	}
	// Everything else is the connection's: refused, reset, timed out,
	// the context's deadline, the client closing.
	return fmt.Errorf("redisstore: %s: %w: %w", opNames[op], sessions.ErrUnavailable, err)
}

// run runs one script in bucket b under the operation's timeout, counts
// it, learns Redis's clock from the `now` its reply starts with, and
// returns the reply.
func (s *Store) run(ctx context.Context, o op, b int, sc *script, keys, args []string) ([]rueidis.RedisMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	t0 := time.Now()
	send := s.mono()
	vals, err := sc.exec(ctx, s.c, keys, args).ToArray()
	if err == nil {
		err = s.learn(b, vals, send)
	}
	err = fail(o, err)
	s.st.ops[o].observe(time.Since(t0), err)
	return vals, err
}

// learn takes the Redis time a script replied with.
func (s *Store) learn(b int, vals []rueidis.RedisMessage, send int64) error {
	if len(vals) == 0 {
		return errReply
	}
	now, err := vals[0].AsInt64()
	if err != nil {
		return fmt.Errorf("%w: %w", errReply, err)
	}
	s.clocks[b].observe(now, send, s.mono())
	return nil
}

// syncClocks makes sure the clocks of the buckets are fresh, reading TIME
// in each (pipelined) where they are not.
func (s *Store) syncClocks(ctx context.Context, buckets ...int) error {
	now := s.mono()
	var calls []call
	var which []int
	for _, b := range buckets {
		if !s.clocks[b].fresh(now) {
			calls = append(calls, call{s: clockScript, keys: []string{s.keys[b].due}})
			which = append(which, b)
		}
	}
	if len(calls) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	t0 := time.Now()
	send := s.mono()
	var first error
	for i, r := range execMulti(ctx, s.c, calls) {
		v, err := r.AsInt64()
		if err == nil {
			s.clocks[which[i]].observe(v, send, s.mono())
		} else if first == nil {
			first = err
		}
	}
	first = fail(opClock, first)
	s.st.ops[opClock].observe(time.Since(t0), first)
	return first
}

func ms(v int64) string { return strconv.FormatInt(v, 10) }

// record builds a Record from an HMGET of c d i a r o; ok is false if
// the hash is missing.
func (s *Store) record(id sessions.ID, f []rueidis.RedisMessage) (rec sessions.Record, d int64, ending, ok bool) {
	if len(f) < 6 || f[1].IsNil() {
		return rec, 0, false, false
	}
	c, _ := f[0].AsInt64()
	d, _ = f[1].AsInt64()
	i, _ := f[2].AsInt64()
	owner, _ := f[5].ToString()
	return s.makeRecord(id, c, d, i, owner), d, !f[4].IsNil(), true
}

func (s *Store) makeRecord(id sessions.ID, c, d, i int64, owner string) sessions.Record {
	rec := sessions.Record{
		ID: id, Created: time.UnixMilli(c), Deadline: time.UnixMilli(d),
		// The store writes down deadlines, not touches: the latest touch
		// a deadline covers is its idle timeout (and the slack) before it.
		LastAccess: time.UnixMilli(max(c, d-i-s.slackMs)),
		Owner:      owner,
	}
	if i != s.idleMs {
		rec.IdleTimeout = time.Duration(i) * time.Millisecond
	}
	return rec
}

var recordFields = []string{"c", "d", "i", "a", "r", "o"}

// Create adds a live session under id, created now (Redis time), or fails
// with sessions.ErrIDInUse if id names a session, live or ending.
func (s *Store) Create(ctx context.Context, id sessions.ID) (sessions.Record, error) {
	b, ids := s.bucket(id), id.String()
	v, err := s.run(ctx, opCreate, b, createScript, []string{s.keys[b].due, s.hashKey(b, ids)},
		[]string{ids, ms(s.idleMs), ms(s.absMs), s.graceMs})
	if err != nil {
		return sessions.Record{}, err
	}
	now, d, err := two(v)
	if err != nil {
		return sessions.Record{}, fail(opCreate, err)
	}
	if d < 0 {
		return sessions.Record{}, sessions.ErrIDInUse
	}
	return s.makeRecord(id, now, d, s.idleMs, ""), nil
}

// two reads the first two integers of a reply.
func two(v []rueidis.RedisMessage) (a, b int64, err error) {
	if len(v) < 2 {
		return 0, 0, errReply
	}
	a, err1 := v[0].AsInt64()
	b, err2 := v[1].AsInt64()
	if err1 != nil || err2 != nil {
		return 0, 0, errReply
	}
	return a, b, nil
}

// Lookup returns the record of the live session id in one round trip.
// Without touch, or with one that this process's hint (see hints) says
// will not write, that is an HMGET of its hash, decided against this
// process's estimate of Redis's clock; a touch that does write then takes
// a second round trip, so the hint must have been wrong. A touch that the
// hint says will write, or (without ClientCache) cannot tell about, runs
// lookupTouchScript instead (see expectWrite): one round trip that reads, decides against Redis's own time and
// writes. Either way a touch writes a new deadline only when the written
// one would no longer cover now plus the idle timeout: a busy session
// costs at most one write per Slack.
func (s *Store) Lookup(ctx context.Context, id sessions.ID, touch bool) (sessions.Record, error) {
	b, ids := s.bucket(id), id.String()
	// One Timeout for the whole lookup, clock reading and touch included.
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	hk := s.hashKey(b, ids)
	if touch && s.expectWrite(b, id) {
		// The script reads Redis's clock itself: no syncClocks first.
		return s.lookupTouch(ctx, id, b, ids, hk)
	}
	err := s.syncClocks(ctx, b)
	if err != nil {
		return sessions.Record{}, err
	}
	t0 := time.Now()
	var f []rueidis.RedisMessage
	cached := false
	if s.o.ClientCache > 0 {
		r := s.c.DoCache(ctx, s.c.B().Hmget().Key(hk).Field(recordFields...).Cache(), s.o.ClientCache)
		f, err = r.ToArray()
		cached = r.IsCacheHit()
	} else {
		f, err = s.c.Do(ctx, s.c.B().Hmget().Key(hk).Field(recordFields...).Build()).ToArray()
	}
	rec, d, ending, ok := s.record(id, f)
	lo, hi := s.redisNow(b)
	if err == nil && cached && (!ok || d*1000 <= lo) {
		// A cached entry may lag a touch or a creation elsewhere by the
		// invalidation's flight: only Redis may call a session gone.
		f, err = s.c.Do(ctx, s.c.B().Hmget().Key(hk).Field(recordFields...).Build()).ToArray()
		rec, d, ending, ok = s.record(id, f)
		lo, hi = s.redisNow(b)
	}
	err = fail(opLookup, err)
	s.st.ops[opLookup].observe(time.Since(t0), err)
	if err != nil {
		return sessions.Record{}, err
	}
	if !ok || ending || d*1000 <= lo {
		return sessions.Record{}, sessions.ErrNotFound
	}
	i, _ := f[2].AsInt64()
	s.hints.put(id, d-i)
	// No write if the deadline covers the idle timeout from the latest
	// Redis time possible, or is the absolute deadline, which no touch moves.
	if a, err := f[3].AsInt64(); !touch || hi+i*1000 <= d*1000 || (err == nil && d >= a) {
		return rec, nil
	}
	v, err := s.run(ctx, opTouch, b, touchScript, []string{s.keys[b].due, hk}, []string{ids, ms(s.slackMs), s.graceMs})
	if err != nil {
		return sessions.Record{}, err
	}
	_, nd, err := two(v)
	if err != nil || len(v) < 3 {
		return sessions.Record{}, fail(opTouch, errReply)
	}
	if nd < 0 {
		return sessions.Record{}, sessions.ErrNotFound
	}
	if w, _ := v[2].AsInt64(); w == 1 {
		s.st.touchWrites.Add(1)
	}
	s.hints.put(id, nd-i)
	c, _ := f[0].AsInt64()
	owner, _ := f[5].ToString()
	return s.makeRecord(id, c, nd, i, owner), nil
}

// expectWrite reports whether a touch of id should run lookupTouchScript
// at once: its hint says the touch writes, judged at the latest Redis time
// possible, or, without ClientCache, there is no hint (or no fresh clock
// to judge it by). With ClientCache the HMGET of a session without a hint
// is likely served from the cache, which costs no round trip at all: its
// touch, if it must write, is then the one round trip. A wrong guess costs
// a second round trip (or a script where an HMGET would do), never a
// missed write: both paths decide against Redis's state.
func (s *Store) expectWrite(b int, id sessions.ID) bool {
	if !s.clocks[b].fresh(s.mono()) {
		return s.o.ClientCache == 0
	}
	_, hi := s.redisNow(b)
	switch s.hints.say(id, hi) {
	case hintWrite:
		return true
	case hintNone:
		return s.o.ClientCache == 0
	}
	return false
}

// lookupTouch is a touching lookup in one script (see Lookup), counted in
// Stats as a "touch", whether it wrote or not.
func (s *Store) lookupTouch(ctx context.Context, id sessions.ID, b int, ids, hk string) (sessions.Record, error) {
	v, err := s.run(ctx, opTouch, b, lookupTouchScript, []string{s.keys[b].due, hk}, []string{ids, ms(s.slackMs), s.graceMs})
	if err != nil {
		return sessions.Record{}, err
	}
	_, d, err := two(v)
	if err != nil || len(v) < 3 {
		return sessions.Record{}, fail(opTouch, errReply)
	}
	if d < 0 {
		return sessions.Record{}, sessions.ErrNotFound
	}
	if len(v) < 6 {
		return sessions.Record{}, fail(opTouch, errReply)
	}
	if w, _ := v[2].AsInt64(); w == 1 {
		s.st.touchWrites.Add(1)
	}
	c, err1 := v[3].AsInt64()
	i, err2 := v[4].AsInt64()
	owner, err3 := v[5].ToString()
	if err1 != nil || err2 != nil || err3 != nil {
		return sessions.Record{}, fail(opTouch, errReply)
	}
	s.hints.put(id, d-i)
	return s.makeRecord(id, c, d, i, owner), nil
}

// Renew moves the live session id, with its values, owner, creation time
// and idle timeout, to a new ID in one script, and touches it: id stops
// naming it everywhere at once. The new ID is nid with its first byte's
// bucket bits replaced by id's (at least 120 of its bits stay nid's
// random ones), so that both lie in one bucket and one cluster slot, which
// makes the move atomic on a cluster too. The returned Record's ID is the
// new ID: the caller must use it, not nid.
func (s *Store) Renew(ctx context.Context, id, nid sessions.ID) (sessions.Record, error) {
	nid[0] = nid[0]&^byte(s.mask) | id[0]&byte(s.mask)
	if nid == id {
		return sessions.Record{}, sessions.ErrIDInUse
	}
	b, ids, nids := s.bucket(id), id.String(), nid.String()
	v, err := s.run(ctx, opRenew, b, renewScript,
		[]string{s.keys[b].due, s.hashKey(b, ids), s.hashKey(b, nids)},
		[]string{ids, nids, ms(s.slackMs), s.graceMs, s.keys[b].owner})
	if err != nil {
		return sessions.Record{}, err
	}
	_, nd, err := two(v)
	if err != nil {
		return sessions.Record{}, fail(opRenew, err)
	}
	switch {
	case nd == -1:
		return sessions.Record{}, sessions.ErrNotFound
	case nd < 0:
		return sessions.Record{}, sessions.ErrIDInUse
	case len(v) < 6:
		return sessions.Record{}, fail(opRenew, errReply)
	}
	c, _ := v[2].AsInt64()
	i, _ := v[3].AsInt64()
	owner, _ := v[5].ToString()
	return s.makeRecord(nid, c, nd, i, owner), nil
}

// Expire ends the live session id and claims its ending with a lease; of
// several callers racing, in this process or others, exactly one gets the
// Ending, the others sessions.ErrNotFound. A session past its deadline
// ends as Idle or Absolute, not Explicit.
func (s *Store) Expire(ctx context.Context, id sessions.ID) (sessions.Ending, error) {
	b, ids := s.bucket(id), id.String()
	v, err := s.run(ctx, opExpire, b, expireScript,
		[]string{s.keys[b].due, s.keys[b].lease, s.hashKey(b, ids)}, []string{ids, s.leaseMs, s.graceMs})
	if err != nil {
		return sessions.Ending{}, err
	}
	if len(v) < 3 {
		return sessions.Ending{}, sessions.ErrNotFound
	}
	l, err1 := v[1].AsInt64()
	r, err2 := v[2].ToString()
	if err1 != nil || err2 != nil {
		return sessions.Ending{}, fail(opExpire, errReply)
	}
	return sessions.Ending{ID: id, Reason: reason(r), Lease: l}, nil
}

func reason(r string) sessions.Reason {
	switch r {
	case "absolute":
		return sessions.Absolute
	case "explicit":
		return sessions.Explicit
	}
	return sessions.Idle
}

// Value returns the encoded value under key, while the session's hash
// exists: alive, overdue, or ending and not yet acknowledged.
func (s *Store) Value(ctx context.Context, id sessions.ID, key string) ([]byte, error) {
	b := s.bucket(id)
	cctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	t0 := time.Now()
	f, err := s.c.Do(cctx, s.c.B().Hmget().Key(s.hashKey(b, id.String())).Field("d", "v:"+key).Build()).ToArray()
	if err == nil && len(f) != 2 {
		err = errReply
	}
	err = fail(opValue, err)
	s.st.ops[opValue].observe(time.Since(t0), err)
	switch {
	case err != nil:
		return nil, err
	case f[0].IsNil():
		return nil, sessions.ErrNotFound
	case f[1].IsNil():
		return nil, sessions.ErrNoValue
	}
	v, err := f[1].ToString()
	if err != nil {
		return nil, fail(opValue, errReply)
	}
	return []byte(v), nil
}

// change runs a script that changes the live session id's hash and
// replies {now, 1 if it was alive}.
func (s *Store) change(ctx context.Context, o op, sc *script, id sessions.ID, args ...string) error {
	b := s.bucket(id)
	v, err := s.run(ctx, o, b, sc, []string{s.hashKey(b, id.String())}, args)
	if err != nil {
		return err
	}
	_, alive, err := two(v)
	if err != nil {
		return fail(o, err)
	}
	if alive != 1 {
		return sessions.ErrNotFound
	}
	return nil
}

// SetValue sets the encoded value under key of the live session id.
func (s *Store) SetValue(ctx context.Context, id sessions.ID, key string, value []byte) error {
	return s.change(ctx, opSetValue, setValueScript, id, "v:"+key, string(value))
}

// DeleteValue deletes the value under key of the live session id.
func (s *Store) DeleteValue(ctx context.Context, id sessions.ID, key string) error {
	return s.change(ctx, opDeleteValue, deleteValueScript, id, "v:"+key)
}

// SetOwner makes owner the owner of the live session id ("" for none),
// changing the session and the owners' indexes in one script.
func (s *Store) SetOwner(ctx context.Context, id sessions.ID, owner string) error {
	return s.change(ctx, opSetOwner, setOwnerScript, id, id.String(), owner, s.keys[s.bucket(id)].owner)
}

// SetIdleTimeout gives the live session id its own idle timeout, at once:
// its deadline becomes its latest touch plus d (possibly now: it is then
// due), capped by its absolute deadline.
func (s *Store) SetIdleTimeout(ctx context.Context, id sessions.ID, d time.Duration) error {
	if d <= 0 {
		return sessions.ErrInvalidTimeout
	}
	b, ids := s.bucket(id), id.String()
	v, err := s.run(ctx, opSetIdle, b, setIdleScript, []string{s.keys[b].due, s.hashKey(b, ids)},
		[]string{ids, ms(ceilMs(d)), ms(s.slackMs), s.graceMs})
	if err != nil {
		return err
	}
	_, nd, err := two(v)
	if err != nil {
		return fail(opSetIdle, err)
	}
	if nd < 0 {
		return sessions.ErrNotFound
	}
	return nil
}

// Owned returns the records of owner's live sessions: the owner's index in
// every bucket (one pipeline), then the sessions' fields (another); index
// entries whose session no longer names owner are pruned (a third).
func (s *Store) Owned(ctx context.Context, owner string) ([]sessions.Record, error) {
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	all := make([]int, len(s.keys))
	for b := range all {
		all[b] = b
	}
	if err := s.syncClocks(ctx, all...); err != nil {
		return nil, err
	}
	t0 := time.Now()
	out, err := s.owned(ctx, owner)
	err = fail(opOwned, err)
	s.st.ops[opOwned].observe(time.Since(t0), err)
	return out, err
}

func (s *Store) owned(ctx context.Context, owner string) ([]sessions.Record, error) {
	cmds := make(rueidis.Commands, len(s.keys))
	for b := range s.keys {
		cmds[b] = s.c.B().Smembers().Key(s.keys[b].owner + owner).Build()
	}
	type member struct {
		b  int
		id sessions.ID
		s  string
	}
	var ms []member
	for b, r := range s.c.DoMulti(ctx, cmds...) {
		ids, err := r.AsStrSlice()
		if err != nil {
			return nil, err
		}
		for _, t := range ids {
			id, err := sessions.ParseID(t)
			if err != nil {
				continue // not ours; the prune below removes it
			}
			ms = append(ms, member{b, id, t})
		}
	}
	if len(ms) == 0 {
		return nil, nil
	}
	cmds = cmds[:0]
	for _, m := range ms {
		cmds = append(cmds, s.c.B().Hmget().Key(s.hashKey(m.b, m.s)).Field(recordFields...).Build())
	}
	var out []sessions.Record
	stale := map[int][]string{}
	for i, r := range s.c.DoMulti(ctx, cmds...) {
		f, err := r.ToArray()
		if err != nil {
			return nil, err
		}
		m := ms[i]
		rec, d, ending, ok := s.record(m.id, f)
		if !ok || rec.Owner != owner {
			stale[m.b] = append(stale[m.b], m.s)
			continue
		}
		if lo, _ := s.redisNow(m.b); !ending && d*1000 > lo {
			out = append(out, rec)
		}
	}
	if len(stale) > 0 {
		var calls []call
		for b, ids := range stale {
			calls = append(calls, call{s: pruneOwnerScript, keys: []string{s.keys[b].owner + owner},
				args: append([]string{s.keys[b].hash, owner}, ids...)})
		}
		// Pruning is housekeeping: its failure does not fail the answer.
		execMulti(ctx, s.c, calls)
	}
	return out, nil
}

// Len returns the number of sessions not yet claimed as ended: the live
// ones and those past their deadline that no process has claimed yet.
func (s *Store) Len(ctx context.Context) (int, error) {
	cctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	t0 := time.Now()
	cmds := make(rueidis.Commands, len(s.keys))
	for b := range s.keys {
		cmds[b] = s.c.B().Zcard().Key(s.keys[b].due).Build()
	}
	n := 0
	var err error
	for _, r := range s.c.DoMulti(cctx, cmds...) {
		v, e := r.AsInt64()
		if e != nil {
			err = e
			break
		}
		n += int(v)
	}
	err = fail(opLen, err)
	s.st.ops[opLen].observe(time.Since(t0), err)
	if err != nil {
		return 0, err
	}
	return n, nil
}

// Range calls f with the ID of each live session, bucket by bucket
// (ZSCAN of the due sets: a session alive throughout is reported once; one
// created or ended meanwhile may or may not be), until f returns false.
func (s *Store) Range(ctx context.Context, f func(sessions.ID) bool) error {
	for b := range s.keys {
		if err := s.syncClocks(ctx, b); err != nil {
			return err
		}
		seen := map[string]bool{}
		var cursor uint64
		for {
			cctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
			t0 := time.Now()
			e, err := s.c.Do(cctx, s.c.B().Zscan().Key(s.keys[b].due).Cursor(cursor).Count(500).Build()).AsScanEntry()
			cancel()
			err = fail(opRange, err)
			s.st.ops[opRange].observe(time.Since(t0), err)
			if err != nil {
				return err
			}
			lo, _ := s.redisNow(b)
			for i := 0; i+1 < len(e.Elements); i += 2 {
				m := e.Elements[i]
				d, err := strconv.ParseFloat(e.Elements[i+1], 64)
				if err != nil || int64(d)*1000 <= lo || seen[m] {
					continue
				}
				seen[m] = true
				id, err := sessions.ParseID(m)
				if err != nil {
					continue
				}
				if !f(id) {
					return nil
				}
			}
			if cursor = e.Cursor; cursor == 0 {
				break
			}
		}
	}
	return nil
}
