package sessions_test

import (
	"context"
	"fmt"
	"time"

	"github.com/sessionwheel/sessionwheel/sessions"
	"github.com/sessionwheel/sessionwheel/sessions/sessionstest"
)

// A user logged in on two browsers changes her password: list her sessions,
// then log her out everywhere. With MaxPerOwner 2, a third login ends her
// least recently used session.
func ExampleManager_ExpireOwner() {
	clock := sessionstest.NewClock(time.Time{})
	m, _ := sessions.New(sessions.Config{Clock: clock, MaxPerOwner: 2,
		OnExpire: func(s sessions.Session, r sessions.Reason) { fmt.Printf("a session of %s ended: %v\n", s.Owner(), r) }})
	defer m.Close(context.Background())

	laptop, _ := m.Create()
	laptop.SetOwner("alice") // after checking her password (and Renew)
	clock.Advance(time.Minute)
	phone, _ := m.Create()
	phone.SetOwner("alice")
	clock.Advance(time.Minute)
	m.Touch(laptop.ID())

	for _, o := range m.Owned("alice") {
		fmt.Println("alice, last seen", o.LastAccess.Format(time.TimeOnly))
	}
	tablet, _ := m.Create()
	tablet.SetOwner("alice") // one too many: the phone, least recently used, ends
	m.Sweep()

	n := m.ExpireOwner("alice")
	m.Sweep() // the callbacks have run
	fmt.Println("logged out everywhere:", n, "sessions; alice has", len(m.Owned("alice")))
	// Output:
	// alice, last seen 00:02:00
	// alice, last seen 00:01:00
	// a session of alice ended: evicted
	// a session of alice ended: explicit
	// a session of alice ended: explicit
	// logged out everywhere: 2 sessions; alice has 0
}
