package wheel

import (
	"math"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// drain polls w at now until nothing is due and returns what it reported.
func drain(t testing.TB, w *Wheel, now int64) map[uint32]int64 {
	got := map[uint32]int64{}
	for {
		h, when, ok := w.Poll(now)
		if !ok {
			return got
		}
		if _, dup := got[h]; dup {
			t.Fatalf("handle %d reported twice", h)
		}
		got[h] = when
	}
}

func TestZeroWheel(t *testing.T) {
	var w Wheel
	if _, ok := w.Next(); ok {
		t.Fatal("empty wheel has a next tick")
	}
	w.Add(7, 100)
	if got := drain(t, &w, 99); len(got) != 0 {
		t.Fatalf("reported %v before its deadline", got)
	}
	if got := drain(t, &w, 100); got[7] != 100 || len(got) != 1 {
		t.Fatalf("at 100 got %v, want 7@100", got)
	}
	if w.Len() != 0 || w.Contains(7) {
		t.Fatal("reported handle still filed")
	}
}

func TestExactTickAcrossLevels(t *testing.T) {
	// For deadlines at every level, the handle is reported at exactly its
	// tick when time moves one tick at a time near the deadline.
	for _, d := range []int64{1, 63, 64, 65, 4095, 4096, 4097, 1 << 20, 1<<20 + 3, 1<<40 + 5} {
		w := New(1000)
		w.Add(1, 1000+d)
		if got := drain(t, w, 1000+d-1); len(got) != 0 {
			t.Fatalf("d=%d: reported early at %d: %v", d, 1000+d-1, got)
		}
		if got := drain(t, w, 1000+d); got[1] != 1000+d {
			t.Fatalf("d=%d: not reported at its tick: %v", d, got)
		}
	}
}

func TestMoveAndRemove(t *testing.T) {
	w := New(0)
	w.Add(1, 10)
	w.Add(2, 10)
	w.Add(1, 500) // move
	if !w.Remove(2) || w.Remove(2) {
		t.Fatal("Remove should succeed once")
	}
	if w.Len() != 1 {
		t.Fatalf("Len = %d, want 1", w.Len())
	}
	if got := drain(t, w, 499); len(got) != 0 {
		t.Fatalf("moved handle reported early: %v", got)
	}
	if when, ok := w.When(1); !ok || when != 500 {
		t.Fatalf("When(1) = %d, %v", when, ok)
	}
	if got := drain(t, w, 500); got[1] != 500 {
		t.Fatalf("moved handle not reported at 500: %v", got)
	}
}

func TestNegativeAndExtremeTicks(t *testing.T) {
	w := New(math.MinInt64 + 5)
	w.Add(1, -3)
	w.Add(2, math.MaxInt64)
	w.Add(3, math.MinInt64) // already due
	if got := drain(t, w, math.MinInt64+5); len(got) != 1 || got[3] != math.MinInt64 {
		t.Fatalf("due handle: %v", got)
	}
	if got := drain(t, w, -4); len(got) != 0 {
		t.Fatalf("early: %v", got)
	}
	if got := drain(t, w, -3); got[1] != -3 || len(got) != 1 {
		t.Fatalf("at -3: %v", got)
	}
	if got := drain(t, w, math.MaxInt64); got[2] != math.MaxInt64 || len(got) != 1 {
		t.Fatalf("at max: %v", got)
	}
}

func TestJumpCostsBucketsNotTicks(t *testing.T) {
	// 10k handles spread over 30 days of 1 ms ticks, then one jump past all
	// of them: the buckets emptied are bounded by levels x occupied buckets,
	// nowhere near the 2.6e9 ticks crossed.
	w := New(0)
	const day = 24 * 3600 * 1000
	for i := range uint32(10000) {
		w.Add(i, int64(i)*3*day/10000+1)
	}
	got := drain(t, w, 30*day)
	if len(got) != 10000 {
		t.Fatalf("reported %d of 10000", len(got))
	}
	if v := w.Visits(); v > levels*levelSlots*levels {
		t.Fatalf("jump visited %d buckets", v)
	}
	t.Logf("30-day jump over 10k handles: %d bucket visits", w.Visits())
}

func TestPollAcceptsAddsWhileDraining(t *testing.T) {
	w := New(0)
	for i := range uint32(100) {
		w.Add(i, int64(i%7)+1)
	}
	seen := map[uint32]bool{}
	for {
		h, _, ok := w.Poll(50)
		if !ok {
			break
		}
		seen[h] = true
		if h < 50 {
			w.Add(h+1000, 30) // due already: must come out of this drain
			w.Add(h+2000, 51) // not due
		}
	}
	if len(seen) != 150 {
		t.Fatalf("saw %d handles, want 150", len(seen))
	}
	if w.Len() != 50 {
		t.Fatalf("Len = %d, want the 50 not due", w.Len())
	}
}

func TestTimeNeverMovesBack(t *testing.T) {
	w := New(100)
	w.Add(1, 105)
	drain(t, w, 50)
	if w.Now() != 100 {
		t.Fatalf("Now = %d after polling the past", w.Now())
	}
	w.Add(2, 90) // in the past: due
	if got := drain(t, w, 60); len(got) != 1 || got[2] != 90 {
		t.Fatalf("got %v, want only the overdue handle", got)
	}
}

func TestAddPanicsOnHugeHandle(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for handle beyond MaxHandle")
		}
	}()
	var w Wheel
	w.Add(MaxHandle+1, 1)
}

// TestModel drives a Wheel and a plain map with the same random operations
// and checks that the wheel reports exactly the handles the model says are
// due, never one early, and that Next never overshoots the earliest deadline.
func TestModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		start := rapid.Int64Range(-1<<40, 1<<40).Draw(t, "start")
		w := New(start)
		now := start
		model := map[uint32]int64{}
		handle := rapid.Uint32Range(0, 300)
		offset := rapid.OneOf(
			rapid.Int64Range(-3, 70),
			rapid.Int64Range(0, 1<<14),
			rapid.Int64Range(0, 1<<40),
			rapid.Int64Range(1<<50, 1<<61),
		)
		check := func() {
			if w.Len() != len(model) {
				t.Fatalf("Len = %d, model has %d", w.Len(), len(model))
			}
			if len(model) == 0 {
				return
			}
			earliest := int64(math.MaxInt64)
			for _, when := range model {
				earliest = min(earliest, when)
			}
			next, ok := w.Next()
			if !ok || next > max(earliest, now) {
				t.Fatalf("Next = %d, %v; earliest deadline %d, now %d", next, ok, earliest, now)
			}
		}
		t.Repeat(map[string]func(*rapid.T){
			"add": func(t *rapid.T) {
				h, when := handle.Draw(t, "h"), now+offset.Draw(t, "offset")
				w.Add(h, when)
				model[h] = when
			},
			"remove": func(t *rapid.T) {
				h := handle.Draw(t, "h")
				_, want := model[h]
				if got := w.Remove(h); got != want {
					t.Fatalf("Remove(%d) = %v, want %v", h, got, want)
				}
				delete(model, h)
			},
			"when": func(t *rapid.T) {
				h := handle.Draw(t, "h")
				want, wantOK := model[h]
				if got, ok := w.When(h); ok != wantOK || got != want {
					t.Fatalf("When(%d) = %d, %v; want %d, %v", h, got, ok, want, wantOK)
				}
			},
			"advance": func(t *rapid.T) {
				var to int64
				if rapid.Bool().Draw(t, "toNext") {
					next, ok := w.Next()
					if !ok {
						return
					}
					to = max(next, now)
				} else {
					to = now + offset.Draw(t, "by")
				}
				got := map[uint32]int64{}
				for {
					h, when, ok := w.Poll(to)
					if !ok {
						break
					}
					if when > max(to, now) {
						t.Fatalf("handle %d reported at %d, before its deadline %d", h, to, when)
					}
					got[h] = when
				}
				for h, when := range model {
					if when <= max(to, now) {
						if got[h] != when {
							t.Fatalf("handle %d due at %d not reported at %d (got %v)", h, when, to, got)
						}
						delete(model, h)
						delete(got, h)
					}
				}
				if len(got) != 0 {
					t.Fatalf("reported handles the model does not have due: %v", got)
				}
				now = max(now, to)
				if w.Now() != now {
					t.Fatalf("Now = %d, want %d", w.Now(), now)
				}
			},
			"": func(t *rapid.T) { check() },
		})
		keys := slices.Collect(func(yield func(uint32) bool) {
			for h := range model {
				if !yield(h) {
					return
				}
			}
		})
		for _, h := range keys {
			if !w.Contains(h) {
				t.Fatalf("model handle %d not in wheel", h)
			}
		}
	})
}

func BenchmarkAddRemove(b *testing.B) {
	w := New(0)
	for i := range uint32(1 << 16) {
		w.Add(i, int64(i))
	}
	var i uint32
	for b.Loop() {
		h := i & (1<<16 - 1)
		w.Remove(h)
		w.Add(h, int64(i)+900)
		i++
	}
}

func BenchmarkPollSteady(b *testing.B) {
	// One handle due per tick, re-filed 900 ticks later: the driver's loop.
	w := New(0)
	const n = 1 << 16
	for i := range uint32(n) {
		w.Add(i, int64(i))
	}
	now := int64(0)
	for b.Loop() {
		h, when, ok := w.Poll(now)
		if !ok {
			now++
			continue
		}
		w.Add(h, when+n)
	}
}

// TestUseMemory checks that a wheel whose nodes come from the caller's
// allocator works as one on the heap, and asks it for each chunk once.
func TestUseMemory(t *testing.T) {
	var w Wheel
	calls := 0
	w.UseMemory(func(size int) []byte {
		calls++
		return make([]byte, size)
	})
	for h := range uint32(3 * chunkLen) {
		w.Add(h, int64(h%100))
	}
	if calls != 3 {
		t.Fatalf("%d allocations for 3 chunks", calls)
	}
	got := drain(t, &w, 1000)
	if len(got) != 3*chunkLen {
		t.Fatalf("drained %d of %d", len(got), 3*chunkLen)
	}
	for h, when := range got {
		if when != int64(h%100) {
			t.Fatalf("handle %d due at %d, want %d", h, when, h%100)
		}
	}
}
