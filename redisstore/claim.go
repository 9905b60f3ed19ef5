package redisstore

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/rueidis"
	"github.com/sessionwheel/sessionwheel/sessions"
)

// maxClaimRounds bounds the pipelines one Claim sends: the first visits
// every bucket, the next ones only buckets that had more due than they
// were asked for.
const maxClaimRounds = 4

// Claim claims up to max due endings across the buckets, each with a
// lease of Options.Lease, and returns them with when the next one may be
// due. The first pipeline runs the claim script in every bucket, starting
// from a bucket that rotates from call to call, asking each for its share
// of max; buckets that had more due than their share are asked again
// (pipelined) with what is left of max. An ending whose lease ran out
// without an Ack comes back with Redelivered set.
//
// If some buckets fail and others succeed, Claim returns what it claimed
// without an error (the failed buckets' endings wait for the next call);
// it returns an error wrapping sessions.ErrUnavailable only when it
// claimed nothing.
func (s *Store) Claim(ctx context.Context, max int) ([]sessions.Ending, time.Time, error) {
	nb := len(s.keys)
	start := int(s.rot.Add(1)) % nb
	ask := make([]int, nb)  // per bucket, in rotation order: how many to ask for
	back := make([]int, nb) // per bucket: due and not taken, as last seen
	hint := make([]int64, nb)
	for j := range nb {
		ask[j] = min(max/nb, s.o.Batch)
		if j < max%nb && ask[j] < s.o.Batch {
			ask[j]++
		}
	}
	var due []sessions.Ending
	var firstErr error
	left := max
	for round := 0; round < maxClaimRounds; round++ {
		var calls []call
		var which []int
		for j := range nb {
			b := (start + j) % nb
			if round > 0 && (back[b] == 0 || left == 0) {
				continue
			}
			n := ask[j]
			if round > 0 {
				n = min(back[b], left, s.o.Batch)
				left -= n
			}
			k := &s.keys[b]
			calls = append(calls, call{s: claimScript, keys: []string{k.due, k.lease},
				args: []string{strconv.Itoa(n), s.leaseMs, s.graceMs, k.hash}})
			which = append(which, b)
		}
		if len(calls) == 0 {
			break
		}
		got, err := s.claimRound(ctx, calls, which, back, hint)
		due = append(due, got...)
		left = max - len(due)
		if err != nil {
			// Redis is away or slow: no second Timeout for this call.
			firstErr = err
			break
		}
		if left <= 0 {
			break
		}
	}
	var total int64
	for _, n := range back {
		total += int64(n)
	}
	s.st.dueBacklog.Store(total)
	if len(due) == 0 && firstErr != nil {
		return nil, time.Time{}, firstErr
	}
	if len(due) > 0 {
		s.st.claims.Add(1)
	} else {
		s.st.emptyClaims.Add(1)
	}
	return due, s.next(back, hint), nil
}

// claimRound sends one pipeline of claim scripts and reads the endings,
// each bucket's backlog and wake hint.
func (s *Store) claimRound(ctx context.Context, calls []call, which []int, back []int, hint []int64) ([]sessions.Ending, error) {
	cctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	t0 := time.Now()
	send := s.mono()
	var due []sessions.Ending
	var firstErr error
	for i, r := range execMulti(cctx, s.c, calls) {
		b := which[i]
		got, err := s.claimReply(b, r, send, back, hint)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		due = append(due, got...)
	}
	firstErr = fail(opClaim, firstErr)
	s.st.ops[opClaim].observe(time.Since(t0), firstErr)
	return due, firstErr
}

// claimReply reads one bucket's {now, lease, earliest due, earliest lease,
// backlog, {id, reason, redelivered, ...}}.
func (s *Store) claimReply(b int, r rueidis.RedisResult, send int64, back []int, hint []int64) ([]sessions.Ending, error) {
	v, err := r.ToArray()
	if err != nil {
		return nil, err
	}
	if err := s.learn(b, v, send); err != nil {
		return nil, err
	}
	if len(v) < 6 {
		return nil, errReply
	}
	l, _ := v[1].AsInt64()
	w1, _ := v[2].AsFloat64()
	w2, _ := v[3].AsFloat64()
	bl, _ := v[4].AsInt64()
	back[b] = int(bl)
	hint[b] = 0
	for _, w := range []int64{int64(w1), int64(w2)} {
		if w > 0 && (hint[b] == 0 || w < hint[b]) {
			hint[b] = w
		}
	}
	items, err := v[5].ToArray()
	if err != nil {
		return nil, errReply
	}
	var due []sessions.Ending
	for i := 0; i+2 < len(items); i += 3 {
		m, _ := items[i].ToString()
		r, _ := items[i+1].ToString()
		re, _ := items[i+2].AsInt64()
		id, err := sessions.ParseID(m)
		if err != nil {
			continue // not a session of ours: nothing to run
		}
		e := sessions.Ending{ID: id, Reason: reason(r), Lease: l, Redelivered: re == 1}
		if e.Redelivered {
			s.st.redelivered.Add(1)
		}
		due = append(due, e)
	}
	return due, nil
}

// next is when Claim should be called again: now if a bucket has more due,
// else the earliest deadline or lease end seen, but no later than Poll, the
// idle timeout or the absolute timeout from now, within which a session
// that the hints did not know of may come due.
func (s *Store) next(back []int, hint []int64) time.Time {
	now := time.Now()
	wait := s.o.Poll
	if s.idleMs > 0 {
		wait = min(wait, time.Duration(s.idleMs)*time.Millisecond)
	}
	if s.absMs > 0 {
		wait = min(wait, time.Duration(s.absMs)*time.Millisecond)
	}
	for b, n := range back {
		if n > 0 {
			return now
		}
		if hint[b] > 0 {
			// From Redis's time to ours, erring early: the highest Redis
			// time possible now.
			_, hi := s.redisNow(b)
			wait = min(wait, time.Duration(hint[b]*1000-hi)*time.Microsecond)
		}
	}
	return now.Add(max(wait, 0))
}

// Ack deletes the sessions of the endings whose lease is still the one
// they were claimed with, one script per bucket, pipelined; an ending
// whose lease has run out (and may have been claimed again elsewhere) is
// left alone and counted in LeasesLost. While Redis is unavailable it
// retries, backing off, until ctx ends or every lease has run out; it then
// returns an error wrapping sessions.ErrUnavailable and counts the endings
// in LeasesLost. Their outcome is unknown: an attempt sent to a stalled
// server may still land (deleting the session, as nobody claimed it since),
// or the ending is offered again, its callbacks run twice.
func (s *Store) Ack(ctx context.Context, done []sessions.Ending) error {
	pending := map[int][]sessions.Ending{}
	for _, e := range done {
		b := s.bucket(e.ID)
		pending[b] = append(pending[b], e)
	}
	backoff := 10 * time.Millisecond
	for {
		err := s.ackOnce(ctx, pending)
		if len(pending) == 0 {
			return nil
		}
		if !errors.Is(err, sessions.ErrUnavailable) {
			return err
		}
		// A lease that has certainly run out cannot be acknowledged any
		// more: give up on it.
		for b, es := range pending {
			lo, _ := s.redisNow(b)
			kept := es[:0]
			for _, e := range es {
				if e.Lease*1000 > lo {
					kept = append(kept, e)
				} else {
					s.st.leasesLost.Add(1)
				}
			}
			if len(kept) == 0 {
				delete(pending, b)
			} else {
				pending[b] = kept
			}
		}
		if len(pending) == 0 || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// ackOnce sends one pipeline of ack scripts, removing from pending the
// buckets that answered.
func (s *Store) ackOnce(ctx context.Context, pending map[int][]sessions.Ending) error {
	var calls []call
	var which []int
	for b, es := range pending {
		k := &s.keys[b]
		keys := make([]string, 1, len(es)+1)
		keys[0] = k.lease
		args := make([]string, 1, 2*len(es)+1)
		args[0] = k.owner
		for _, e := range es {
			ids := e.ID.String()
			keys = append(keys, k.hash+ids)
			args = append(args, ids, strconv.FormatInt(e.Lease, 10))
		}
		calls = append(calls, call{s: ackScript, keys: keys, args: args})
		which = append(which, b)
	}
	cctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	t0 := time.Now()
	send := s.mono()
	var firstErr error
	for i, r := range execMulti(cctx, s.c, calls) {
		b := which[i]
		v, err := r.ToArray()
		if err == nil {
			err = s.learn(b, v, send)
		}
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		s.st.leasesLost.Add(uint64(len(v) - 1))
		delete(pending, b)
	}
	firstErr = fail(opAck, firstErr)
	s.st.ops[opAck].observe(time.Since(t0), firstErr)
	return firstErr
}
