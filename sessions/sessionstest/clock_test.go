package sessionstest

import (
	"slices"
	"testing"
	"time"
)

func TestAdvanceCallsTimersOnTime(t *testing.T) {
	c := NewClock(time.Time{})
	var seen []time.Duration
	var tick func()
	tick = func() {
		seen = append(seen, c.Now().Sub(defaultStart))
		c.AfterFunc(time.Second, tick)
	}
	c.AfterFunc(time.Second, tick)
	late := c.AfterFunc(1500*time.Millisecond, func() { seen = append(seen, -c.Now().Sub(defaultStart)) })
	c.Advance(3500 * time.Millisecond)
	want := []time.Duration{time.Second, -1500 * time.Millisecond, 2 * time.Second, 3 * time.Second}
	if !slices.Equal(seen, want) {
		t.Fatalf("timers saw %v, want %v", seen, want)
	}
	if late.Stop() {
		t.Fatal("Stop of a timer that ran reported true")
	}
	if got := c.Now().Sub(defaultStart); got != 3500*time.Millisecond {
		t.Fatalf("Now = %v", got)
	}
}

func TestJumpAndSkipRunTimersLate(t *testing.T) {
	c := NewClock(time.Time{})
	var at []time.Duration
	c.AfterFunc(time.Second, func() { at = append(at, c.Now().Sub(defaultStart)) })
	c.AfterFunc(2*time.Second, func() { at = append(at, c.Now().Sub(defaultStart)) })
	stopped := c.AfterFunc(time.Second, func() { t.Error("stopped timer ran") })
	if !stopped.Stop() {
		t.Fatal("Stop of a pending timer reported false")
	}
	c.Skip(5 * time.Second)
	if len(at) != 0 || c.Pending() != 2 {
		t.Fatalf("Skip ran timers: %v", at)
	}
	c.Jump(0)
	if !slices.Equal(at, []time.Duration{5 * time.Second, 5 * time.Second}) || c.Pending() != 0 {
		t.Fatalf("late timers saw %v", at)
	}
	c.Advance(-time.Hour)
	if got := c.Now().Sub(defaultStart); got != 5*time.Second-time.Hour {
		t.Fatalf("back in time: %v", got)
	}
}
