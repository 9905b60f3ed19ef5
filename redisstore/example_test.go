package redisstore_test

import (
	"context"
	"log"
	"time"

	"github.com/redis/rueidis"
	"github.com/sessionwheel/sessionwheel/redisstore"
	"github.com/sessionwheel/sessionwheel/sessions"
)

// Sessions shared by every process that runs this, through one Redis (or a
// cluster: list its nodes). Each ending's OnExpire runs in one process; make
// it idempotent with the session ID as the key (see the package doc's
// delivery guarantee). Compiled, not run: it needs a Redis server.
func Example() {
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{"127.0.0.1:6379"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()                                    // the store never closes the client
	st, err := redisstore.New(c, redisstore.Options{}) // documented defaults
	if err != nil {
		log.Fatal(err)
	}
	m, err := sessions.New(sessions.Config{
		IdleTimeout: 15 * time.Minute,
		OnExpire: func(s sessions.Session, r sessions.Reason) {
			log.Printf("session %v ended: %v", s.ID(), r)
		},
		Store: st,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(context.Background())
}
