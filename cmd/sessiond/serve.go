package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// httpServer returns an http.Server for h with the configured timeouts and
// the given write timeout.
func (s *server) httpServer(h http.Handler, writeTimeout time.Duration) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.cfg.readHeaderTimeout,
		ReadTimeout:       s.cfg.readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       s.cfg.keepAliveTimeout,
		MaxHeaderBytes:    s.cfg.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// serve serves on ln, and on adminLn if it is not nil, until ctx is done;
// then it fails /readyz for -drain-delay while it goes on serving, and
// stops: it closes the listeners, finishes the requests in flight, closes
// the manager (the remaining sessions end and their callbacks run, or with
// -state they are saved instead: state.go), writes
// out the last expiry lines, and returns the exit status. The stop, after
// the drain delay, takes -shutdown-timeout at most.
func (s *server) serve(ctx context.Context, ln, adminLn net.Listener) int {
	servers := []*http.Server{s.httpServer(s.h, s.cfg.writeTimeout)}
	servers[0].TLSConfig = s.tls
	if adminLn != nil {
		// No write timeout: a CPU profile takes 30 s by default, and
		// pprof refuses one longer than the server's write timeout.
		servers = append(servers, s.httpServer(s.admin, 0))
	}
	stopFlushing := make(chan struct{})
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		s.out.flushEvery(flushInterval, stopFlushing)
	}()
	stopSaving := make(chan struct{})
	saved := make(chan struct{})
	go func() {
		defer close(saved)
		if s.cfg.stateFile != "" && s.cfg.saveEvery > 0 {
			s.saveEvery(s.cfg.saveEvery, stopSaving)
		}
	}()

	served := make(chan error, len(servers))
	go func() {
		if s.tls != nil {
			served <- servers[0].ServeTLS(ln, "", "")
		} else {
			served <- servers[0].Serve(ln)
		}
	}()
	scheme := "http"
	if s.tls != nil {
		scheme = "https"
	}
	s.log.Info("listening", "addr", ln.Addr().String(), "scheme", scheme,
		"idle_timeout", s.m.Config().IdleTimeout, "tick", s.m.Config().Tick,
		"max_sessions", s.cfg.maxSessions, "evict", s.cfg.evict)
	if adminLn != nil {
		go func() { served <- servers[1].Serve(adminLn) }()
		s.log.Info("admin listening", "addr", adminLn.Addr().String())
	}

	pending := len(servers)
	var err error
	select {
	case err = <-served:
		pending--
	case <-ctx.Done():
	}
	s.stopping.Store(true)
	if err == nil && s.cfg.drainDelay > 0 {
		s.log.Info("draining", "for", s.cfg.drainDelay)
		select {
		case err = <-served:
			pending--
		case <-time.After(s.cfg.drainDelay):
		}
	}
	status := exitOK
	if err != nil {
		s.log.Error("serving failed", "err", err)
		status = exitError
	} else {
		s.log.Info("stopping", "sessions", s.m.Len(), "timeout", s.cfg.shutdownTimeout)
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), s.cfg.shutdownTimeout)
	defer cancel()
	shut := make(chan error, len(servers))
	for _, hs := range servers {
		go func() {
			err := hs.Shutdown(stopCtx)
			if err != nil {
				hs.Close()
			}
			shut <- err
		}()
	}
	for range servers {
		if err := <-shut; err != nil {
			s.log.Error("requests still in flight", "err", err)
			status = exitError
		}
	}
	for ; pending > 0; pending-- {
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serving failed", "err", err)
			status = exitError
		}
	}

	close(stopSaving)
	<-saved
	live := s.m.Len()
	if s.redis != nil {
		live = 0 // on Redis, for the other processes: Close ends none
	}
	if s.cfg.stateFile != "" {
		// Saved, not ended: no expiry line, and the next start restores
		// them. The manager was made with Config.DiscardOnClose, so Close
		// drops them without ending them.
		s.log.Info("saving the sessions instead of ending them", "state", s.cfg.stateFile, "sessions", live)
		if err := s.saveState(); err != nil {
			s.log.Error("cannot save sessions; the state file keeps the last save", "state", s.cfg.stateFile, "err", err)
			status = exitError
		}
		live = 0
	}
	start := time.Now()
	if err := s.m.Close(stopCtx); err != nil {
		s.log.Error("expiry callbacks still running", "err", err)
		status = exitError
	}
	s.closeRedis() // after Close: the last acknowledgements need it
	close(stopFlushing)
	<-flushed
	if err := s.out.flush(); err != nil {
		s.log.Error("cannot write expiry lines", "err", err)
		status = exitError
	}
	s.log.Info("stopped", "sessions_ended_at_close", live, "close_took", time.Since(start))
	return status
}
