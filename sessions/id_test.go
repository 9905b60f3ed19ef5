package sessions_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sessionwheel/sessionwheel/sessions"
)

func TestIDRoundTrip(t *testing.T) {
	m, _, _ := newManager(t, sessions.Config{})
	seen := map[sessions.ID]bool{}
	for range 1000 {
		id := mustCreate(t, m).ID()
		if seen[id] {
			t.Fatal("duplicate id")
		}
		seen[id] = true
		s := id.String()
		if len(s) != sessions.IDLen {
			t.Fatalf("%q has length %d", s, len(s))
		}
		back, err := sessions.ParseID(s)
		if err != nil || back != id {
			t.Fatalf("ParseID(%q) = %v, %v", s, back, err)
		}
		text, _ := id.MarshalText()
		var u sessions.ID
		if err := u.UnmarshalText(text); err != nil || u != id {
			t.Fatalf("UnmarshalText: %v", err)
		}
	}
}

func TestParseIDRejects(t *testing.T) {
	valid := sessions.ID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}.String()
	for name, s := range map[string]string{
		"empty":         "",
		"short":         valid[:21],
		"long":          valid + "A",
		"10KB":          strings.Repeat("A", 10<<10),
		"padding":       valid[:20] + "==",
		"std-alphabet":  valid[:21] + "+",
		"slash":         "/" + valid[1:],
		"space":         valid[:10] + " " + valid[11:],
		"non-ascii":     valid[:20] + "é",
		"nul":           valid[:21] + "\x00",
		"trailing-bits": valid[:21] + "B", // last char carries 4 bits that must be zero
	} {
		if id, err := sessions.ParseID(s); !errors.Is(err, sessions.ErrMalformedID) {
			t.Errorf("%s: ParseID(%.30q) = %v, %v; want ErrMalformedID", name, s, id, err)
		}
	}
}

func TestParseIDDoesNotAllocate(t *testing.T) {
	inputs := []string{sessions.ID{7}.String(), "", strings.Repeat("x", 10<<10), "bad!bad!bad!bad!bad!ba"}
	for _, s := range inputs {
		if n := testing.AllocsPerRun(100, func() { sessions.ParseID(s) }); n != 0 {
			t.Errorf("ParseID(%.20q) allocates %v times", s, n)
		}
	}
	m, _, _ := newManager(t, sessions.Config{})
	id := mustCreate(t, m).ID().String()
	if n := testing.AllocsPerRun(100, func() { m.GetString(id); m.GetString("garbage") }); n != 0 {
		t.Errorf("GetString allocates %v times", n)
	}
}

// FuzzParseID: whatever the input, ParseID does not panic, and whatever it
// accepts is the canonical text of the ID it returns.
func FuzzParseID(f *testing.F) {
	f.Add(sessions.ID{1, 2, 3}.String())
	f.Add("AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("AAAAAAAAAAAAAAAAAAAAAB")
	f.Add("____________________-w")
	f.Add("")
	f.Add("AAAAAAAAAAAAAAAAAAAA==")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := sessions.ParseID(s)
		if err != nil {
			if id != (sessions.ID{}) {
				t.Fatalf("error with a non-zero id")
			}
			return
		}
		if got := id.String(); got != s {
			t.Fatalf("ParseID(%q) accepted text that is not canonical: %q", s, got)
		}
	})
}
