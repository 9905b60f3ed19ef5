package main

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sessionwheel/sessionwheel/httpadapter"
	"github.com/sessionwheel/sessionwheel/sessions"
)

// The owners demo: a login names the visitor's session's owner, /sessions
// lists the owner's sessions, and /logout?everywhere=1 ends them all. There
// is no password: it shows the engine's index of owners, not an
// authentication scheme.

// login is POST /login with user=NAME (form or query): it starts a session
// if the visitor has none, moves it to a fresh ID (a login must, against
// session fixation) and makes NAME its owner.
func (s *server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	user := r.FormValue("user")
	if user == "" || len(user) > sessions.MaxOwnerLen {
		http.Error(w, fmt.Sprintf("Give a user name of 1 to %d bytes.", sessions.MaxOwnerLen), http.StatusBadRequest)
		return
	}
	if _, err := httpadapter.GetSession(w, r); err != nil {
		s.refuse(w, err)
		return
	}
	sess, err := httpadapter.Renew(w, r)
	if err == nil {
		err = sess.SetOwner(user)
	}
	if errors.Is(err, httpadapter.ErrNoSession) || errors.Is(err, sessions.ErrEnded) {
		// It ended between the two calls (a logout everywhere, say).
		http.Error(w, "Your session ended during the login; log in again.", http.StatusConflict)
		return
	}
	if err != nil {
		s.refuse(w, err)
		return
	}
	s.log.Debug("logged in", "session", sessionTag(sess.ID()))
	if wantsPage(r) {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "You are logged in as %q, on %s: see /sessions.\n", user, plural(len(s.m.Owned(user)), "session"))
}

// ownedRow is one of the owner's sessions as the pages show it: by a tag,
// never by its ID, which is a bearer credential.
type ownedRow struct {
	Tag, Started, LastSeen string
	This                   bool
}

// ownedRows returns the sessions of the owner of the request's session,
// with the owner; none if it has no owner.
func (s *server) ownedRows(r *http.Request) (owner string, rows []ownedRow) {
	sess, ok := httpadapter.FromRequest(r)
	if !ok {
		return "", nil
	}
	if owner = sess.Owner(); owner == "" {
		return "", nil
	}
	for _, o := range s.m.Owned(owner) {
		rows = append(rows, ownedRow{
			Tag:      sessionTag(o.Session.ID()),
			Started:  o.Created.UTC().Format(time.DateTime),
			LastSeen: o.LastAccess.UTC().Format(time.DateTime),
			This:     o.Session.ID() == sess.ID(),
		})
	}
	return owner, rows
}

// listSessions is GET /sessions: the sessions of the visitor's owner, in plain
// text, one a line, by tag.
func (s *server) listSessions(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	owner, rows := s.ownedRows(r)
	if owner == "" {
		fmt.Fprintln(w, "You are not logged in.")
		return
	}
	fmt.Fprintf(w, "%q has %s:\n", owner, plural(len(rows), "session"))
	for _, row := range rows {
		this := ""
		if row.This {
			this = "  (this one)"
		}
		fmt.Fprintf(w, "%s  started %s UTC  last seen %s UTC%s\n", row.Tag, row.Started, row.LastSeen, this)
	}
}

// logoutEverywhere is POST /logout?everywhere=1: it ends the visitor's
// session (clearing the cookie) and every other session of its owner.
func (s *server) logoutEverywhere(w http.ResponseWriter, r *http.Request) {
	owner := ""
	if sess, ok := httpadapter.FromRequest(r); ok {
		owner = sess.Owner()
	}
	n := 0
	if httpadapter.Expire(w, r) == nil {
		n++
	}
	if owner != "" {
		n += s.m.ExpireOwner(owner)
	}
	if wantsPage(r) {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	switch {
	case n == 0:
		fmt.Fprintln(w, "You have no session.")
	case owner == "":
		fmt.Fprintln(w, "Your session has ended.")
	default:
		fmt.Fprintf(w, "%s of %q ended.\n", plural(n, "session"), owner)
	}
}

// plural returns "1 session", "2 sessions".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
