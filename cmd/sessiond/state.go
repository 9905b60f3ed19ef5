package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sessionwheel/sessionwheel/sessions"
)

// The state file (-state): the sessions, saved as a snapshot of the
// manager, so that a restart (a deploy, a crash) does not log every
// visitor out. It is read at start, written every -save-every while
// serving and once more at a signal, instead of ending the sessions.
//
// Every write goes to a temporary file in the same directory, which is
// synced, renamed over the state file and the directory synced: a crash
// at any point leaves the previous state file whole or the new one. A
// state file that cannot be read is never written over: sessiond refuses
// to start, or with -start-empty moves it aside first.
//
// The file holds the session IDs, which are bearer credentials: it is
// created readable by its owner only.

// tempPattern names the temporary files of the state file at path.
func tempPattern(path string) string { return filepath.Base(path) + ".tmp-*" }

// newManager returns the manager for mcfg, restored from the state file if
// there is one. Without -state it is sessions.New.
func (s *server) newManager(mcfg sessions.Config) (*sessions.Manager, error) {
	path := s.cfg.stateFile
	if path == "" {
		return sessions.New(mcfg)
	}
	// The manager drops what is left at Close: the state file keeps it.
	mcfg.DiscardOnClose = true
	// Temporary files of a write that a crash cut short.
	if old, _ := filepath.Glob(filepath.Join(filepath.Dir(path), tempPattern(path))); len(old) > 0 {
		for _, f := range old {
			os.Remove(f)
		}
		s.log.Warn("removed the temporary files of an unfinished save", "files", len(old))
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		s.log.Info("no state file: starting with no sessions", "state", path)
		return sessions.New(mcfg)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot open the state file: %w", err)
	}
	defer f.Close()
	start := time.Now()
	mcfg.Restore = bufio.NewReaderSize(f, 1<<20)
	m, err := sessions.New(mcfg)
	if err == nil {
		// Those whose idle timeout ran out while no process held them have
		// ended already (their lines are printed): they are the difference.
		s.log.Info("restored sessions", "state", path, "sessions", m.Len(),
			"ended_at_restore", m.Stats().Restored-uint64(m.Len()), "took", time.Since(start))
		return m, nil
	}
	if errors.Is(err, sessions.ErrInvalidConfig) || !s.cfg.startEmpty {
		return nil, fmt.Errorf("cannot restore the sessions of %s, which is left as it is (-start-empty moves it aside and starts with none): %w", path, err)
	}
	aside := path + ".unreadable-" + strconv.FormatInt(time.Now().Unix(), 10)
	if rerr := os.Rename(path, aside); rerr != nil {
		return nil, fmt.Errorf("cannot restore the sessions of %s (%v), nor move it aside: %w", path, err, rerr)
	}
	s.log.Warn("cannot restore the sessions: moved the state file aside, starting with no sessions (-start-empty)",
		"state", path, "moved_to", aside, "err", err)
	mcfg.Restore = nil
	return sessions.New(mcfg)
}

// saveState writes the manager's sessions to the state file.
func (s *server) saveState() error {
	start := time.Now()
	n := s.m.Len()
	var size int64
	err := writeAtomic(s.cfg.stateFile, func(w io.Writer) error {
		cw := &countWriter{w: w}
		err := s.m.Snapshot(cw)
		size = cw.n
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("saved sessions", "state", s.cfg.stateFile, "sessions", n, "bytes", size, "took", time.Since(start))
	return nil
}

// saveEvery saves the state file every interval until stop is closed, so
// that a crash loses at most interval's worth of new sessions. A failed
// save is logged, and the state file keeps the last one that succeeded.
func (s *server) saveEvery(interval time.Duration, stop <-chan struct{}) {
	every(interval, stop, func() {
		if err := s.saveState(); err != nil {
			s.log.Error("cannot save sessions; the state file keeps the last save", "state", s.cfg.stateFile, "err", err)
		}
	})
}

// writeAtomic replaces the file at path with what write writes, so that a
// crash at any point leaves either the old file or the new one, whole: a
// temporary file in the same directory (a rename is atomic only within a
// file system), synced before the rename, and the directory synced after
// it, so that the rename itself survives a power cut.
func writeAtomic(path string, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, tempPattern(path)) // mode 0600
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
