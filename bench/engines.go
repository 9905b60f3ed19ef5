package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/RussellLuo/timingwheel"
	"github.com/maypok86/otter/v2"

	"github.com/sessionwheel/sessionwheel/sessions"
)

// An engine keeps sessions and ends each one after its idle timeout. Every
// engine uses sessions.ID and the same source of IDs; the baselines also
// share the same table (baseTable), so that only the tracking of timeouts
// differs between them.
type engine interface {
	// create starts a session and returns its ID.
	create() sessions.ID
	// touch keeps the session alive and reports whether it was.
	touch(id sessions.ID) bool
	// close stops the engine without running callbacks for the sessions
	// still alive, and releases everything it holds.
	close()
}

// A dueCreator can start a session that ends at a given instant: the
// baselines that take no clock do this for the expiry-burst scenario, where
// every session must come due at the same moment.
type dueCreator interface {
	createDue(at time.Time) sessions.ID
}

// engineConfig says how to build an engine for one measurement.
type engineConfig struct {
	idle     time.Duration     // idle timeout
	tick     time.Duration     // granularity: sessionwheel's Tick, timingwheel's tick, otter's clock
	onExpire func(sessions.ID) // called once for each session that expires; nil: nothing
	// clock, if set, is the time source of the engines that take one
	// (sessionwheel and otter); the expiry-burst scenario freezes it while it
	// creates the sessions.
	clock *benchClock
}

// An engineKind is one contestant.
type engineKind struct {
	name  string
	perOp string // what create, touch and expiry do, for the report
	// clocked engines read a benchClock; the others implement dueCreator.
	clocked bool
	build   func(engineConfig) (engine, error)
}

// engineKinds lists the contestants in report order.
var engineKinds = []engineKind{
	{
		name:    "sessionwheel",
		clocked: true,
		build:   newSessionwheel,
		perOp: "sessions.Manager as shipped, with its own table (64 shards, open-addressing index, pointer-free records), not the baselines' map. " +
			"create: ID from a 4 KiB crypto/rand block, shard lock, index insert, record, wheel insert. " +
			"touch: shard lock, a clock read, index probe, deadline check, store of the current tick when it changed (no wheel move). " +
			"expiry: one driver goroutine wakes at the first tick something is due, empties due wheel buckets, re-files touched sessions, and hands the endings in batches to GOMAXPROCS callback workers.",
	},
	{
		name:  "stdtimer",
		build: newStdtimer,
		perOp: "64 mutex-guarded shards of map[ID]*entry (entry: ID, *time.Timer). " +
			"create: ID from the same 4 KiB block source, shard lock, map insert, time.AfterFunc(idle). " +
			"touch: shard lock, map lookup, Timer.Reset(idle). " +
			"expiry: the runtime runs the timer's func in a new goroutine: shard lock, map delete, callback.",
	},
	{
		name:  "timingwheel",
		build: newTimingwheel,
		perOp: "the same shards and map (entry: ID, *timingwheel.Timer, its func made once). " +
			"create: ID from the same block source, shard lock, map insert, tw.AfterFunc(idle) (RussellLuo/timingwheel, tick = Tick, 64 buckets per level). " +
			"touch: shard lock, map lookup, Timer.Stop + tw.AfterFunc(idle). " +
			"expiry: the wheel's goroutine starts the func in a new goroutine: shard lock, map delete, callback.",
	},
	{
		name:    "otter",
		clocked: true,
		build:   newOtter,
		perOp: "otter.Cache[ID, struct{}] (its own concurrent hash table instead of the map), ExpiryAccessing(idle), OnDeletion as the callback " +
			"(run in a new goroutine: otter's default Executor), and a clock that reads the time once per Tick and cleans up every Tick " +
			"(like otter.CoarseClock; otter's default cleans up once a second). " +
			"create: ID from the same block source, Set. " +
			"touch: GetIfPresent (a read-buffer entry; the expiry is moved in otter's timer wheel during maintenance). " +
			"expiry: maintenance on the clean-up tick removes expired entries and submits OnDeletion.",
	},
}

func engineByName(name string) (engineKind, bool) {
	for _, k := range engineKinds {
		if k.name == name {
			return k, true
		}
	}
	return engineKind{}, false
}

// An offHeaper holds memory outside the Go heap, which runtime.MemStats
// does not count.
type offHeaper interface{ offHeapBytes() int64 }

// offHeap returns what e holds outside the Go heap, if anything.
func offHeap(e engine) int64 {
	if o, ok := e.(offHeaper); ok {
		return o.offHeapBytes()
	}
	return 0
}

// ---- sessionwheel ----

type swEngine struct{ m *sessions.Manager }

func (e *swEngine) offHeapBytes() int64 { return e.m.Stats().OffHeapBytes }

func newSessionwheel(c engineConfig) (engine, error) {
	cfg := sessions.Config{IdleTimeout: c.idle, Tick: c.tick, DiscardOnClose: true}
	if f := c.onExpire; f != nil {
		cfg.OnExpire = func(s sessions.Session, _ sessions.Reason) { f(s.ID()) }
	}
	if c.clock != nil {
		cfg.Clock = c.clock
	}
	m, err := sessions.New(cfg)
	if err != nil {
		return nil, err
	}
	return &swEngine{m: m}, nil
}

func (e *swEngine) create() sessions.ID {
	s, err := e.m.Create()
	if err != nil {
		panic(fmt.Sprintf("sessionwheel: Create: %v", err))
	}
	return s.ID()
}

func (e *swEngine) touch(id sessions.ID) bool { return e.m.Touch(id) }
func (e *swEngine) close()                    { _ = e.m.Close(context.Background()) }

// ---- the baselines' common table ----

// baseShards is the number of shards of the baselines' table: the same as
// sessionwheel's default, chosen by the same byte of the ID.
const baseShards = sessions.DefaultShards

// baseTable is the table both timer baselines use: map[ID]*E in
// mutex-guarded shards.
type baseTable[E any] struct {
	shards [baseShards]baseShard[E]
}

type baseShard[E any] struct {
	mu sync.Mutex
	m  map[sessions.ID]*E
	_  [48]byte // keep neighbouring shards' locks off each other's cache line
}

func (t *baseTable[E]) init() {
	for i := range t.shards {
		t.shards[i].m = map[sessions.ID]*E{}
	}
}

func (t *baseTable[E]) shard(id sessions.ID) *baseShard[E] {
	return &t.shards[int(id[15])&(baseShards-1)]
}

// expire is a timer's end of a session: it removes id and calls onExpire,
// unless a touch has re-armed the timer since (remove finds e replaced or
// gone).
func (t *baseTable[E]) expire(id sessions.ID, e *E, onExpire func(sessions.ID)) {
	if t.remove(id, e) && onExpire != nil {
		onExpire(id)
	}
}

// remove deletes id if it still maps to e, and reports whether it did: an
// expiry that lost a race (its timer re-armed by a touch that saw it had
// fired) finds nothing to do.
func (t *baseTable[E]) remove(id sessions.ID, e *E) bool {
	sh := t.shard(id)
	sh.mu.Lock()
	ok := sh.m[id] == e
	if ok {
		delete(sh.m, id)
	}
	sh.mu.Unlock()
	return ok
}

// ---- stdtimer ----

type stdEntry struct {
	id sessions.ID
	t  *time.Timer
}

type stdEngine struct {
	tab      baseTable[stdEntry]
	ids      sessions.IDSource
	idle     time.Duration
	onExpire func(sessions.ID)
}

func newStdtimer(c engineConfig) (engine, error) {
	e := &stdEngine{idle: c.idle, onExpire: c.onExpire}
	e.tab.init()
	return e, nil
}

func (e *stdEngine) create() sessions.ID { return e.createIn(e.idle) }

func (e *stdEngine) createDue(at time.Time) sessions.ID { return e.createIn(time.Until(at)) }

func (e *stdEngine) createIn(d time.Duration) sessions.ID {
	id := e.ids.Next()
	en := &stdEntry{id: id}
	sh := e.tab.shard(id)
	sh.mu.Lock()
	sh.m[id] = en
	en.t = time.AfterFunc(d, func() { e.expire(en) })
	sh.mu.Unlock()
	return id
}

func (e *stdEngine) expire(en *stdEntry) { e.tab.expire(en.id, en, e.onExpire) }

func (e *stdEngine) touch(id sessions.ID) bool {
	sh := e.tab.shard(id)
	sh.mu.Lock()
	en, ok := sh.m[id]
	// Reset reports false if the timer had fired: the session is ending
	// (its func waits for this lock) and the re-armed timer will find nothing.
	ok = ok && en.t.Reset(e.idle)
	sh.mu.Unlock()
	return ok
}

func (e *stdEngine) close() {
	for i := range e.tab.shards {
		sh := &e.tab.shards[i]
		sh.mu.Lock()
		for _, en := range sh.m {
			en.t.Stop()
		}
		sh.m = nil
		sh.mu.Unlock()
	}
}

// ---- timingwheel ----

type twEntry struct {
	id   sessions.ID
	t    *timingwheel.Timer
	fire func()
}

type twEngine struct {
	tab      baseTable[twEntry]
	ids      sessions.IDSource
	tw       *timingwheel.TimingWheel
	idle     time.Duration
	onExpire func(sessions.ID)
}

func newTimingwheel(c engineConfig) (engine, error) {
	e := &twEngine{idle: c.idle, onExpire: c.onExpire, tw: timingwheel.NewTimingWheel(c.tick, 64)}
	e.tab.init()
	e.tw.Start()
	return e, nil
}

func (e *twEngine) create() sessions.ID { return e.createIn(e.idle) }

func (e *twEngine) createDue(at time.Time) sessions.ID { return e.createIn(time.Until(at)) }

func (e *twEngine) createIn(d time.Duration) sessions.ID {
	id := e.ids.Next()
	en := &twEntry{id: id}
	en.fire = func() { e.expire(en) }
	sh := e.tab.shard(id)
	sh.mu.Lock()
	sh.m[id] = en
	en.t = e.tw.AfterFunc(d, en.fire)
	sh.mu.Unlock()
	return id
}

func (e *twEngine) expire(en *twEntry) { e.tab.expire(en.id, en, e.onExpire) }

func (e *twEngine) touch(id sessions.ID) bool {
	sh := e.tab.shard(id)
	sh.mu.Lock()
	en, ok := sh.m[id]
	// Stop reports false if the timer has fired: the session is ending.
	if ok = ok && en.t.Stop(); ok {
		en.t = e.tw.AfterFunc(e.idle, en.fire)
	}
	sh.mu.Unlock()
	return ok
}

func (e *twEngine) close() {
	e.tw.Stop()
	for i := range e.tab.shards {
		sh := &e.tab.shards[i]
		sh.mu.Lock()
		sh.m = nil
		sh.mu.Unlock()
	}
}

// ---- otter ----

type otterEngine struct {
	c     *otter.Cache[sessions.ID, struct{}]
	ids   sessions.IDSource
	clock *otterClock
}

func newOtter(c engineConfig) (engine, error) {
	clk := newOtterClock(c.tick, c.clock)
	opts := &otter.Options[sessions.ID, struct{}]{
		ExpiryCalculator: otter.ExpiryAccessing[sessions.ID, struct{}](c.idle),
		Clock:            clk,
	}
	if f := c.onExpire; f != nil {
		opts.OnDeletion = func(ev otter.DeletionEvent[sessions.ID, struct{}]) {
			if ev.Cause == otter.CauseExpiration {
				f(ev.Key)
			}
		}
	}
	cache, err := otter.New(opts)
	if err != nil {
		clk.stop()
		return nil, err
	}
	return &otterEngine{c: cache, clock: clk}, nil
}

func (e *otterEngine) create() sessions.ID {
	id := e.ids.Next()
	e.c.Set(id, struct{}{})
	return id
}

func (e *otterEngine) touch(id sessions.ID) bool {
	_, ok := e.c.GetIfPresent(id)
	return ok
}

func (e *otterEngine) close() {
	e.c.StopAllGoroutines()
	e.clock.stop()
	e.c = nil
}

// otterClock is otter's clock in this harness: the time read once per tick
// (as otter.CoarseClock does) or taken from a benchClock, and a clean-up
// tick every tick instead of otter's fixed second, so that otter's expiry
// has the same granularity as sessionwheel's.
type otterClock struct {
	coarse *otter.CoarseClock
	bc     *benchClock
	ticker *time.Ticker
}

func newOtterClock(tick time.Duration, bc *benchClock) *otterClock {
	c := &otterClock{bc: bc, ticker: time.NewTicker(tick)}
	if bc == nil {
		c.coarse = otter.NewCoarseClock(tick)
	}
	return c
}

// NowNano implements otter.Clock.
func (c *otterClock) NowNano() int64 {
	if c.bc != nil {
		return c.bc.Now().UnixNano()
	}
	return c.coarse.NowNano()
}

// Tick implements otter.Clock: the clean-up ticks come every tick, whatever
// otter asks for.
func (c *otterClock) Tick(time.Duration) <-chan time.Time { return c.ticker.C }

func (c *otterClock) stop() {
	c.ticker.Stop()
	if c.coarse != nil {
		c.coarse.Stop()
	}
}

// ---- clock ----

// benchClock is the real clock, except that it can start frozen: while
// frozen it reads a fixed instant, and once thawed it runs at the real rate
// from there. Sessions created while it is frozen all start at the same
// instant, so they all come due at the same instant: the expiry-burst
// scenario. It is a sessions.Clock. Its AfterFunc counts in clock time: a
// timer set while the clock is frozen starts when it thaws, with what is
// left of its duration then, so that moving a frozen clock forward
// (advance) brings a manager's wake-up forward with it.
type benchClock struct {
	base   time.Time
	frozen atomic.Bool
	shift  atomic.Int64 // while frozen, the clock reads base+shift
	offset atomic.Int64 // once thawed, it lags this far behind the real time

	mu   sync.Mutex
	held []*benchTimer // set while frozen: started by thaw
}

func newFrozenClock() *benchClock {
	c := &benchClock{base: time.Now()}
	c.frozen.Store(true)
	return c
}

// Now implements sessions.Clock.
func (c *benchClock) Now() time.Time {
	if c.frozen.Load() {
		return c.base.Add(time.Duration(c.shift.Load()))
	}
	return time.Now().Add(-time.Duration(c.offset.Load()))
}

// A benchTimer is an AfterFunc of a benchClock.
type benchTimer struct {
	mu      sync.Mutex
	at      time.Time // the clock's time to call f at
	f       func()
	t       *time.Timer // nil until the clock thaws
	stopped bool
}

// Stop implements sessions.Timer.
func (t *benchTimer) Stop() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	t.stopped = true
	return t.t == nil || t.t.Stop()
}

// AfterFunc implements sessions.Clock.
func (c *benchClock) AfterFunc(d time.Duration, f func()) sessions.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	bt := &benchTimer{at: c.Now().Add(d), f: f}
	if c.frozen.Load() {
		c.held = append(c.held, bt)
	} else {
		bt.t = time.AfterFunc(d, f)
	}
	return bt
}

// advance moves a frozen clock forward by d.
func (c *benchClock) advance(d time.Duration) { c.shift.Add(int64(d)) }

// thaw starts the clock and returns the real time at which it started: the
// instant the frozen clock read corresponds to it.
func (c *benchClock) thaw() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	c.offset.Store(int64(now.Sub(c.base)) - c.shift.Load())
	c.frozen.Store(false)
	for _, bt := range c.held {
		bt.mu.Lock()
		if !bt.stopped {
			bt.t = time.AfterFunc(bt.at.Sub(c.Now()), bt.f)
		}
		bt.mu.Unlock()
	}
	c.held = nil
	return now
}
