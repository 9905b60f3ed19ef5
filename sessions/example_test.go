package sessions_test

import (
	"context"
	"fmt"
	"time"

	"github.com/sessionwheel/sessionwheel/sessions"
	"github.com/sessionwheel/sessionwheel/sessions/sessionstest"
)

// A manager with Twisted's semantics: a session ends after its idle timeout
// without a touch, and its callbacks run. A fake clock moves time here; a
// server leaves Config.Clock nil.
func ExampleNew() {
	clock := sessionstest.NewClock(time.Time{})
	m, err := sessions.New(sessions.Config{
		IdleTimeout: 5 * time.Second,
		Clock:       clock,
		OnExpire: func(s sessions.Session, r sessions.Reason) {
			user, _ := s.Get("user")
			fmt.Printf("session of %v ended: %v\n", user, r)
		},
	})
	if err != nil {
		panic(err)
	}
	defer m.Close(context.Background())

	s, _ := m.Create()
	s.Set("user", "alice")
	for range 3 {
		clock.Advance(4 * time.Second)
		m.Touch(s.ID()) // each request keeps it alive
	}
	m.Sweep()
	fmt.Println("alive after 12 s of visits:", s.Alive())

	clock.Advance(7 * time.Second) // no more visits
	m.Sweep()
	fmt.Println("alive after 7 s of silence:", s.Alive())
	// Output:
	// alive after 12 s of visits: true
	// session of alice ended: idle
	// alive after 7 s of silence: false
}

// NotifyOnExpire callbacks run for every ending, including a logout.
func ExampleSession_NotifyOnExpire() {
	m, _ := sessions.New(sessions.Config{Clock: sessionstest.NewClock(time.Time{})})
	defer m.Close(context.Background())

	s, _ := m.Create()
	s.NotifyOnExpire(func(_ sessions.Session, r sessions.Reason) { fmt.Println("first:", r) })
	s.NotifyOnExpire(func(_ sessions.Session, r sessions.Reason) { fmt.Println("second:", r) })
	s.Expire() // logout
	s.Expire() // ending is idempotent: nothing happens
	m.Sweep()  // wait for the callbacks
	// Output:
	// first: explicit
	// second: explicit
}

// Renew gives a session a new ID after a login, against session fixation.
func ExampleManager_Renew() {
	m, _ := sessions.New(sessions.Config{Clock: sessionstest.NewClock(time.Time{})})
	defer m.Close(context.Background())

	s, _ := m.Create()
	s.Set("cart", 3)
	renewed, _ := m.Renew(s.ID())
	_, oldFound := m.Get(s.ID())
	cart, _ := renewed.Get("cart")
	fmt.Println(oldFound, cart, renewed.ID() != s.ID())
	// Output: false 3 true
}

// Cookie values go through GetString, which parses without allocating and
// counts what it rejects.
func ExampleManager_GetString() {
	m, _ := sessions.New(sessions.Config{Clock: sessionstest.NewClock(time.Time{})})
	defer m.Close(context.Background())

	s, _ := m.Create()
	_, ok := m.GetString(s.ID().String())
	_, bad := m.GetString("not-a-session-id")
	fmt.Println(ok, bad, m.Stats().LookupRejected)
	// Output: true false 1
}
