package httpadapter_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/sessionwheel/sessionwheel/httpadapter"
	"github.com/sessionwheel/sessionwheel/sessions"
)

// browser serves a GET for path with h, sending the cookie it was last
// given, as a browser would, and prints the response's body and whether it
// set a cookie.
type browser struct {
	h      http.Handler
	cookie *http.Cookie
}

func (b *browser) get(path string) {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if b.cookie != nil {
		r.AddCookie(b.cookie)
	}
	w := httptest.NewRecorder()
	b.h.ServeHTTP(w, r)
	fmt.Print(path, ": ", w.Body)
	for _, c := range w.Result().Cookies() {
		if c.MaxAge < 0 {
			b.cookie = nil
			fmt.Print("  [cookie cleared]")
		} else {
			b.cookie = c
			fmt.Print("  [cookie set: ", strings.Replace(c.String(), c.Value, "<id>", 1), "]")
		}
	}
	fmt.Println()
}

// The middleware wraps a whole server. Handlers read the session with
// FromRequest, and only GetSession starts one.
func ExampleMiddleware() {
	m, err := sessions.New(sessions.Config{IdleTimeout: 15 * time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(context.Background())

	mw, err := httpadapter.Middleware(m, nil)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := httpadapter.FromRequest(r); ok {
			fmt.Fprint(w, "welcome back")
			return
		}
		fmt.Fprint(w, "hello, stranger")
	})
	mux.HandleFunc("/start", func(w http.ResponseWriter, r *http.Request) {
		if _, err := httpadapter.GetSession(w, r); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "started")
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		httpadapter.Expire(w, r)
		fmt.Fprint(w, "bye")
	})
	// In a server: http.ListenAndServe(addr, mw(mux))
	b := &browser{h: mw(mux)}

	b.get("/")
	b.get("/start")
	b.get("/")
	b.get("/logout")
	b.get("/")
	fmt.Println("live sessions:", m.Len())
	// Output:
	// /: hello, stranger
	// /start: started  [cookie set: session=<id>; Path=/; HttpOnly; SameSite=Lax]
	// /: welcome back
	// /logout: bye  [cookie cleared]
	// /: hello, stranger
	// live sessions: 0
}

// GetSession is Twisted's request.getSession(): it returns the visitor's
// session, starting one and setting its cookie the first time. Values
// stored in it stay on the server.
func ExampleGetSession() {
	m, err := sessions.New(sessions.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(context.Background())
	mw, err := httpadapter.Middleware(m, nil)
	if err != nil {
		log.Fatal(err)
	}
	counter := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := httpadapter.GetSession(w, r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		n, _ := s.Get("visits")
		visits, _ := n.(int)
		visits++
		s.Set("visits", visits)
		fmt.Fprintf(w, "visit %d", visits)
	})
	b := &browser{h: mw(counter)}

	b.get("/")
	b.get("/")
	b.get("/")
	// Output:
	// /: visit 1  [cookie set: session=<id>; Path=/; HttpOnly; SameSite=Lax]
	// /: visit 2
	// /: visit 3
}

// After a login, Renew moves the session to a new ID, so that an ID an
// attacker planted in the visitor's browser beforehand is worth nothing.
func ExampleRenew() {
	m, err := sessions.New(sessions.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(context.Background())
	mw, err := httpadapter.Middleware(m, nil)
	if err != nil {
		log.Fatal(err)
	}
	var before, after sessions.ID
	login := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := httpadapter.GetSession(w, r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		before = s.ID()
		// ... check the password ...
		if s, err = httpadapter.Renew(w, r); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		after = s.ID()
		s.Set("user", "alice")
		fmt.Fprint(w, "logged in")
	})
	b := &browser{h: mw(login)}
	b.get("/login")
	_, oldAlive := m.Peek(before)
	fmt.Println("new ID:", after != before, "old ID alive:", oldAlive)
	// Output:
	// /login: logged in  [cookie set: session=<id>; Path=/; HttpOnly; SameSite=Lax]
	// new ID: true old ID alive: false
}
