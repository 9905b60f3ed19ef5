package sessions_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sessionwheel/sessionwheel/sessions"
	"github.com/sessionwheel/sessionwheel/sessions/sessionstest"
)

// Two managers on one shared store stand for two server processes on one
// Redis (redisstore.New gives the real store): either serves a session the
// other created, a logout through one is seen by the other, and each ending
// runs OnExpire in exactly one of them. sessionstest.Store is the fake
// shared store of tests, on a fake clock.
func ExampleConfig_store() {
	clock := sessionstest.NewClock(time.Time{})
	store := sessionstest.NewStore(clock, 0)
	newProcess := func(name string) *sessions.Manager {
		m, err := sessions.New(sessions.Config{
			IdleTimeout: time.Minute,
			Clock:       clock,
			Store:       store,
			OnExpire: func(s sessions.Session, r sessions.Reason) {
				fmt.Printf("%s: session ended: %v\n", name, r)
			},
		})
		if err != nil {
			panic(err)
		}
		return m
	}
	a, b := newProcess("a"), newProcess("b")
	defer a.Close(context.Background())
	defer b.Close(context.Background())

	s, _ := a.Create()
	s.Set("user", "alice")
	if t, err := b.Lookup(s.ID()); err == nil { // the next request lands on b
		user, _ := t.Get("user")
		fmt.Println("b serves the session of", user)
		t.Expire() // logout through b, which claims the ending
		b.Sweep()  // and has run its callbacks when Sweep returns
	}
	_, err := a.Lookup(s.ID())
	fmt.Println("a after the logout:", errors.Is(err, sessions.ErrNotFound))
	// Output:
	// b serves the session of alice
	// b: session ended: explicit
	// a after the logout: true
}
