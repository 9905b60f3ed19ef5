// Package redisstore keeps a sessions.Manager's sessions in Redis
// (standalone or Redis Cluster), so that several server processes share
// them: any process serves any session, and each ending is claimed by
// exactly one of them.
//
//	c, _ := rueidis.NewClient(rueidis.ClientOption{InitAddress: addrs}) // one node or a cluster
//	st, err := redisstore.New(c, redisstore.Options{})                  // documented defaults
//	m, err := sessions.New(sessions.Config{IdleTimeout: 15 * time.Minute, OnExpire: audit, Store: st})
//
// # Delivery guarantee
//
// Each ending is claimed exactly once, and its callback runs at least once:
// a second time only if the process that claimed it died or stalled past
// its lease (Options.Lease) before acknowledging it, or a Redis failover
// lost the claim or the acknowledgement; make callbacks idempotent with the
// session ID as the key.
//
// # One clock
//
// Deadlines are Redis's: every change is a Lua script that reads TIME, so
// processes whose clocks disagree still agree on every ending. A lookup is
// one round trip: an HMGET of the session's hash, decided against a local
// estimate of Redis's time that errs toward "alive" (an ending may be seen
// late, never early), or, for a touch that must write, one script that
// reads, decides with Redis's TIME and writes. Which of the two a touch
// needs, the store guesses from the deadline it last saw for the session
// (a fixed table of 32768 hints, 256 KiB; a session it has no hint for
// gets the script, or with ClientCache the cached HMGET, and a wrong guess
// costs a second round trip, never a missed write). A touch writes a new deadline only when the written one
// would no longer cover the idle timeout, moving it Slack further, so a
// busy session costs at most one write per Slack and ends at most one
// Slack late, never early.
//
// # Layout
//
// Sessions are spread over Options.Buckets buckets by the first byte of
// their ID. A bucket's keys share a hash tag, so every script touches one
// cluster slot; with 64 buckets three masters hold 20/22/22. Endings are
// found in a sorted set per bucket ordered by deadline, claimed by a script
// that moves them to a lease set (the lease's end fences a late Ack), and
// deleted by the Ack. An owner's sessions are indexed per bucket (a set in
// the bucket's slot), so that SetOwner and an ending's removal stay
// one-slot scripts; Owned reads every bucket's index in one pipeline. A
// Renew keeps the session in its bucket: the new ID takes the bucket bits
// of the old one (see Store.Renew). Key expiry (deadline + Options.Grace) is garbage
// collection only: Redis's keyspace notifications are lossy and never
// drive a callback.
//
// # Redis down, failover
//
// Every operation that cannot reach Redis in Options.Timeout fails with an
// error wrapping sessions.ErrUnavailable, its outcome unknown: lookups
// report it (httpadapter answers 503), nothing is taken as ended because
// of it, and a session whose deadline passes meanwhile ends after Redis is
// back. Replication is asynchronous: a failover loses the writes the
// promoted replica had not received (sessions created or touched, claims
// and acknowledgements of about the last second with a lagging replica; a
// lost claim or ack means a callback runs twice). Set min-replicas-to-write
// 1 and min-replicas-max-lag on the masters to refuse writes that no
// replica follows (they then fail as unavailable rather than vanish), and
// keep Lease longer than a failover. A server that restarts without
// persistence (appendonly, or RDB snapshots) and without a replica to take
// over comes back empty: every session is gone, without a callback.
//
// # Sizing
//
// A session with one 100-byte value costs about 460 bytes of Redis memory
// (its hash and key, a member of its bucket's due set; measured by
// BenchmarkBytesPerSession on Redis 7.0), provided the hash stays in Redis's compact listpack encoding:
// hash-max-listpack-value must be at least the size of the largest encoded
// value (Redis's default, 64, makes such a session cost about 720 bytes).
// New warns when the server's setting is below 128. Set
// maxmemory-policy to noeviction: an evicted hash is a lost session.
//
// # Values
//
// Values arrive encoded by the manager's Config.Codec (gob by default: it
// alone gives back int and registered struct types through any; register
// them with gob.Register) and are stored as hash fields "v:<key>". A
// claimed ending's values stay readable until its Ack.
package redisstore
