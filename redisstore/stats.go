package redisstore

import (
	"sync/atomic"
	"time"

	"github.com/sessionwheel/sessionwheel/sessions"
)

// The operations counted in Stats, by name.
type op int

const (
	opCreate op = iota
	opLookup
	opTouch
	opRenew
	opExpire
	opValue
	opSetValue
	opDeleteValue
	opSetIdle
	opSetOwner
	opOwned
	opClaim
	opAck
	opLen
	opRange
	opClock
	numOps
)

var opNames = [numOps]string{
	opCreate: "create", opLookup: "lookup", opTouch: "touch", opRenew: "renew", opExpire: "expire",
	opValue: "value", opSetValue: "set_value", opDeleteValue: "delete_value", opSetIdle: "set_idle_timeout",
	opSetOwner: "set_owner", opOwned: "owned", opClaim: "claim", opAck: "ack", opLen: "len",
	opRange: "range", opClock: "clock",
}

// latencyBounds are the latency buckets of every operation, in seconds:
// 50 µs (a pipelined loopback call) to 1 s (far beyond Timeout's default).
var latencyBounds = []float64{
	50e-6, 100e-6, 250e-6, 500e-6,
	1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1,
}

// opStats are one operation's counters, updated lock-free.
type opStats struct {
	ok, errs atomic.Uint64
	counts   [15]atomic.Uint64 // len(latencyBounds)+1
	sumNanos atomic.Uint64
}

func (s *opStats) observe(d time.Duration, err error) {
	if err != nil {
		s.errs.Add(1)
	} else {
		s.ok.Add(1)
	}
	sec := d.Seconds()
	i := 0
	for i < len(latencyBounds) && sec > latencyBounds[i] {
		i++
	}
	s.counts[i].Add(1)
	s.sumNanos.Add(uint64(max(d, 0)))
}

func (s *opStats) snapshot(name string) sessions.StoreOp {
	h := sessions.Histogram{Bounds: latencyBounds, Counts: make([]uint64, len(s.counts))}
	for i := range s.counts {
		h.Counts[i] = s.counts[i].Load()
		h.Count += h.Counts[i]
	}
	h.Sum = float64(s.sumNanos.Load()) / 1e9
	return sessions.StoreOp{Name: name, OK: s.ok.Load(), Errors: s.errs.Load(), Duration: h}
}

// stats are the store's counters.
type stats struct {
	ops                                [numOps]opStats
	touchWrites, claims, emptyClaims   atomic.Uint64
	redelivered, leasesLost, abandoned atomic.Uint64
	dueBacklog                         atomic.Int64
}

// Stats returns the store's counters. Abandoned stays 0: the store never
// gives back a claimed ending itself; one whose callbacks did not run is
// offered again when its lease ends.
func (s *Store) Stats() sessions.StoreStats {
	out := sessions.StoreStats{
		TouchWrites: s.st.touchWrites.Load(),
		Claims:      s.st.claims.Load(),
		EmptyClaims: s.st.emptyClaims.Load(),
		Redelivered: s.st.redelivered.Load(),
		LeasesLost:  s.st.leasesLost.Load(),
		Abandoned:   s.st.abandoned.Load(),
		DueBacklog:  s.st.dueBacklog.Load(),
	}
	for i := range s.st.ops {
		out.Ops = append(out.Ops, s.st.ops[i].snapshot(opNames[i]))
	}
	return out
}
