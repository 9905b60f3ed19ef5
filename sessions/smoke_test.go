package sessions_test

import (
	"context"
	"testing"
	"time"

	"github.com/sessionwheel/sessionwheel/sessions"
	"github.com/sessionwheel/sessionwheel/sessions/sessionstest"
)

func TestSmoke(t *testing.T) {
	clk := sessionstest.NewClock(time.Time{})
	ended := make(chan sessions.Reason, 10)
	m, err := sessions.New(sessions.Config{IdleTimeout: 10 * time.Second, Clock: clk, OnExpire: func(s sessions.Session, r sessions.Reason) { ended <- r }})
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.Create()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Get(s.ID()); !ok {
		t.Fatal("not found")
	}
	for range 10 {
		clk.Advance(time.Second)
		m.Sweep()
	}
	if !s.Alive() {
		t.Fatal("ended early")
	}
	clk.Advance(time.Second)
	m.Sweep()
	if s.Alive() {
		t.Fatal("still alive")
	}
	if r := <-ended; r != sessions.Idle {
		t.Fatal(r)
	}
	t.Logf("%+v", m.Stats())
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
