package redisstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sessionwheel/sessionwheel/redisstore/redistest"
	"github.com/sessionwheel/sessionwheel/sessions"
)

// everyOp runs each of the store's operations once and returns their
// errors and durations by name.
func everyOp(st *Store, id sessions.ID, ending sessions.Ending) (map[string]error, map[string]time.Duration) {
	ctx := context.Background()
	errs, took := map[string]error{}, map[string]time.Duration{}
	do := func(name string, f func() error) {
		t0 := time.Now()
		errs[name] = f()
		took[name] = time.Since(t0)
	}
	drop := func(_ any, err error) error { return err }
	do("create", func() error { return drop(st.Create(ctx, newIDNoT())) })
	do("lookup", func() error { return drop(st.Lookup(ctx, id, false)) })
	do("lookup+touch", func() error { return drop(st.Lookup(ctx, id, true)) })
	do("renew", func() error { return drop(st.Renew(ctx, id, newIDNoT())) })
	do("expire", func() error { return drop(st.Expire(ctx, id)) })
	do("value", func() error { return drop(st.Value(ctx, id, "k")) })
	do("set_value", func() error { return st.SetValue(ctx, id, "k", []byte("w")) })
	do("delete_value", func() error { return st.DeleteValue(ctx, id, "k") })
	do("set_idle", func() error { return st.SetIdleTimeout(ctx, id, time.Hour) })
	do("set_owner", func() error { return st.SetOwner(ctx, id, "ada") })
	do("owned", func() error { return drop(st.Owned(ctx, "ada")) })
	do("claim", func() error { _, _, err := st.Claim(ctx, 100); return err })
	do("ack", func() error {
		// Ack retries until its context ends (or the lease does).
		actx, cancel := context.WithTimeout(ctx, st.o.Timeout)
		defer cancel()
		return st.Ack(actx, []sessions.Ending{ending})
	})
	do("len", func() error { return drop(st.Len(ctx)) })
	do("range", func() error { return st.Range(ctx, func(sessions.ID) bool { return true }) })
	return errs, took
}

func newIDNoT() sessions.ID {
	var id sessions.ID
	copy(id[:], time.Now().String()) // distinct enough for a call that must fail
	return id
}

// With Redis stalled or dead, every operation fails within about its
// Timeout with an error wrapping sessions.ErrUnavailable; nothing is lost:
// a session whose deadline passed during the outage ends after it, and the
// others are still alive.
func TestRedisDownUnavailable(t *testing.T) {
	r := redistest.Server(t)
	const timeout = 200 * time.Millisecond
	o := Options{Timeout: timeout, Lease: 5 * time.Second}
	cfg := sessions.StoreConfig{IdleTimeout: 300 * time.Millisecond, Tick: 10 * time.Millisecond}
	st := open(t, client(t, r.Addr), o, cfg)
	short, long := newID(t), newID(t)
	rs, err := st.Create(bg, short)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(bg, long); err != nil {
		t.Fatal(err)
	}
	if err := st.SetIdleTimeout(bg, long, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := st.SetValue(bg, short, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	other := newID(t)
	if _, err := st.Create(bg, other); err != nil {
		t.Fatal(err)
	}
	held, err := st.Expire(bg, other)
	if err != nil {
		t.Fatal(err)
	}

	check := func(phase string) {
		t.Helper()
		errs, took := everyOp(st, long, held)
		for name, err := range errs {
			if !errors.Is(err, sessions.ErrUnavailable) {
				t.Errorf("%s: %s = %v, want ErrUnavailable", phase, name, err)
			}
			// Generous: it only catches an operation that waits for
			// Redis without its Timeout.
			if took[name] > timeout+time.Second {
				t.Errorf("%s: %s failed after %v with a %v Timeout", phase, name, took[name], timeout)
			}
		}
		t.Logf("%s: %v", phase, took)
	}
	// Stalled (SIGSTOP): connections open, no answers; each operation
	// gives up after its Timeout.
	r.Stop()
	check("stalled")
	// The short session's deadline passes while Redis is stalled (its
	// clock is this machine's: wait on it).
	for time.Now().UnixMilli() <= rs.Deadline.UnixMilli()+20 {
		time.Sleep(5 * time.Millisecond)
	}
	r.Cont()
	due := claimAll(t, st, 1, 10*time.Second)
	if due[0].ID != short || due[0].Reason != sessions.Idle {
		t.Fatalf("after the stall, claimed %+v, want %v Idle", due[0], short)
	}
	if v, err := st.Value(bg, short, "k"); err != nil || string(v) != "v" {
		t.Fatalf("values of the ending after the stall: %q, %v", v, err)
	}
	if _, err := st.Lookup(bg, long, true); err != nil {
		t.Fatalf("long session after the stall: %v", err)
	}
	if err := st.Ack(bg, append(due, held)); err != nil {
		t.Fatal(err)
	}
	if n := st.Stats().LeasesLost; n != 0 {
		t.Errorf("LeasesLost = %d", n)
	}

	// Dead (SIGKILL): refused connections; then a fresh server (this one
	// keeps nothing) on the same port: the store works again, its scripts
	// loaded anew.
	r.Kill()
	check("killed")
	r.Restart()
	id := newID(t)
	eventually(t, 10*time.Second, "a create after the restart", func() bool {
		_, err := st.Create(bg, id)
		return err == nil
	})
	if _, err := st.Lookup(bg, id, true); err != nil {
		t.Fatal(err)
	}
	due = claimAll(t, st, 1, 10*time.Second)
	if due[0].ID != id {
		t.Fatalf("claimed %v after the restart, want %v", due[0].ID, id)
	}
	if err := st.Ack(bg, due); err != nil {
		t.Fatal(err)
	}
	for _, op := range st.Stats().Ops {
		if op.Name == "lookup" && op.Errors == 0 {
			t.Errorf("lookup errors not counted: %+v", op)
		}
	}
}

// Ack retries through a short outage and succeeds once Redis answers; it
// gives up, counting lost leases, once the lease has certainly run out.
func TestAckRetriesUntilLeaseEnd(t *testing.T) {
	r := redistest.Server(t)
	cfg := sessions.StoreConfig{IdleTimeout: time.Minute, Tick: 10 * time.Millisecond}
	st := open(t, client(t, r.Addr), Options{Timeout: 50 * time.Millisecond, Lease: 2 * time.Second}, cfg)
	expire := func() sessions.Ending {
		id := newID(t)
		if _, err := st.Create(bg, id); err != nil {
			t.Fatal(err)
		}
		e, err := st.Expire(bg, id)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}

	// A short outage: Ack waits it out. (Values are never set here: Value
	// tells a live or ending session, ErrNoValue, from a gone one.)
	e := expire()
	r.Stop()
	done := make(chan error, 1)
	go func() { done <- st.Ack(bg, []sessions.Ending{e}) }()
	// Ack has failed at least once (Redis stalled) before Redis returns.
	eventually(t, 5*time.Second, "a failed ack attempt", func() bool {
		for _, op := range st.Stats().Ops {
			if op.Name == "ack" && op.Errors > 0 {
				return true
			}
		}
		return false
	})
	r.Cont()
	if err := <-done; err != nil {
		t.Fatalf("Ack across a short outage: %v", err)
	}
	if _, err := st.Value(bg, e.ID, "k"); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("session after the ack: %v", err)
	}

	// An outage longer than the lease: Ack gives up when it has run out.
	e = expire()
	r.Stop()
	err := st.Ack(bg, []sessions.Ending{e})
	r.Cont()
	if !errors.Is(err, sessions.ErrUnavailable) {
		t.Fatalf("Ack past the lease: %v, want ErrUnavailable", err)
	}
	if now := redisTime(t, r); now < e.Lease {
		t.Fatalf("Ack gave up at Redis time %d, before the lease's end %d", now, e.Lease)
	}
	if n := st.Stats().LeasesLost; n != 1 {
		t.Fatalf("LeasesLost = %d, want 1", n)
	}
	// Nothing is lost: the attempts sent into the stalled server may still
	// land once it resumes (nobody claimed the ending meanwhile, so the
	// lease is still the one acknowledged), or the ending is offered again.
	eventually(t, 10*time.Second, "the ending acknowledged late or offered again", func() bool {
		if _, err := st.Value(bg, e.ID, "k"); errors.Is(err, sessions.ErrNotFound) {
			return true
		}
		due, _, err := st.Claim(bg, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range due {
			if d.ID != e.ID || !d.Redelivered || d.Reason != sessions.Explicit {
				t.Fatalf("re-offered %+v", d)
			}
		}
		return len(due) > 0
	})
}
