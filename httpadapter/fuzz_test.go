package httpadapter

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/sessionwheel/sessionwheel/sessions"
)

// FuzzCookie feeds the middleware arbitrary Cookie headers, of one or two
// lines. In them "{live}" and "{live2}" stand for the IDs of two live
// sessions and "{ended}" for one that has ended, since IDs are random and
// the fuzzer could never guess one. It checks that:
//
//   - nextCookie splits a header into the same cookies as net/http;
//   - the middleware finds exactly the first live session among the first
//     maxCandidates cookies of its name, and nothing else;
//   - no input panics, creates a session or sets a cookie.
//
// The seed corpus is in testdata/fuzz/FuzzCookie.
func FuzzCookie(f *testing.F) {
	m, _ := newManager(f, sessions.Config{})
	a, err := newAdapter(m, nil)
	if err != nil {
		f.Fatal(err)
	}
	live, _ := m.Create()
	live2, _ := m.Create()
	gone, _ := m.Create()
	m.Expire(gone.ID())
	m.Sweep()
	placeholders := strings.NewReplacer("{live}", live.String(), "{live2}", live2.String(), "{ended}", gone.String())
	isLive := func(v string) bool { return v == live.String() || v == live2.String() }

	var found sessions.Session
	var ok bool
	h := a.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		found, ok = FromRequest(r)
	}))

	f.Add("session={live}", "")
	f.Add("a=b; session={ended}; session={live2}", "session={live}")
	f.Fuzz(func(t *testing.T, line1, line2 string) {
		lines := []string{placeholders.Replace(line1)}
		if line2 != "" {
			lines = append(lines, placeholders.Replace(line2))
		}

		// The cookies called "session", as nextCookie sees them.
		var ours []string
		for _, l := range lines {
			for {
				v, rest, found := nextCookie(l, "session")
				if !found {
					break
				}
				if len(rest) >= len(l) {
					t.Fatalf("nextCookie(%q) did not advance: rest %q", l, rest)
				}
				ours, l = append(ours, v), rest
			}
		}

		// net/http sees the same ones, less those with values it refuses
		// (which are no IDs either), unless the header has more cookies
		// than it reads at all.
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Cookie"] = lines
		n := 0
		for _, l := range lines {
			n += strings.Count(l, ";") + 1
		}
		if n <= 3000 {
			var theirs, valid []string
			for _, c := range r.Cookies() {
				if c.Name == "session" {
					theirs = append(theirs, c.Value)
				}
			}
			for _, v := range ours {
				if validCookieValue(v) {
					valid = append(valid, v)
				}
			}
			if !slices.Equal(valid, theirs) {
				t.Fatalf("header %q:\nnextCookie finds %q\nnet/http finds   %q", lines, valid, theirs)
			}
		}

		// The middleware finds the first live one among the first few.
		want := ""
		for _, v := range ours[:min(len(ours), maxCandidates)] {
			if isLive(v) {
				want = v
				break
			}
		}
		w := httptest.NewRecorder()
		found, ok = sessions.Session{}, false
		h.ServeHTTP(w, r)
		switch {
		case want == "" && ok:
			t.Fatalf("header %q: found %v, want none", lines, found)
		case want != "" && (!ok || found.String() != want):
			t.Fatalf("header %q: found %v (%v), want %s", lines, found, ok, want)
		}
		if sc := w.Result().Header.Values("Set-Cookie"); len(sc) != 0 {
			t.Fatalf("header %q: Set-Cookie %q", lines, sc)
		}
		if n := m.Len(); n != 2 {
			t.Fatalf("header %q: %d live sessions, want 2", lines, n)
		}
	})
}

// validCookieValue reports whether net/http accepts v as a cookie's value
// (after taking off double quotes).
func validCookieValue(v string) bool {
	for i := range len(v) {
		if b := v[i]; b < 0x20 || b >= 0x7f || b == '"' || b == ';' || b == '\\' {
			return false
		}
	}
	return true
}
