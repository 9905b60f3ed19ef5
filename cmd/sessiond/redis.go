package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionwheel/sessionwheel/redisstore"
)

// With -redis, several sessiond processes share their sessions on Redis
// (package redisstore): any of them serves any visitor, a logout through one
// is seen by all at once, and each expiry line is printed by exactly one of
// them, the one that claimed the ending. Stopping a process ends none of the
// sessions: they stay on Redis for the others. While Redis cannot be
// reached, a request with a session cookie is answered 503 (the session may
// be alive; the middleware never replaces it), and /readyz fails.

// openRedis connects to the Redis node or cluster of -redis and returns the
// client and the store on it.
func openRedis(cfg config, log *slog.Logger) (rueidis.Client, *redisstore.Store, error) {
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress: strings.Split(cfg.redis, ","),
		// Lookups go to Redis every time: a logout elsewhere is seen at
		// once, and no cache memory is spent on Redis's side.
		DisableCache: true,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("cannot connect to Redis at %s: %w", cfg.redis, err)
	}
	st, err := redisstore.New(c, redisstore.Options{Prefix: cfg.redisPrefix, Logger: log})
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	log.Info("sessions on Redis", "redis", cfg.redis, "prefix", cfg.redisPrefix)
	return c, st, nil
}

// pingRedis reports whether Redis answers soon, for /readyz.
func pingRedis(ctx context.Context, c rueidis.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	return c.Do(ctx, c.B().Ping().Build()).Error()
}

// closeRedis closes the Redis client, if there is one.
func (s *server) closeRedis() {
	if s.redis != nil {
		s.redis.Close()
	}
}
