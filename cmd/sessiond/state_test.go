package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// A write that fails half way leaves the previous file whole and no
// temporary file behind; one that succeeds replaces it, readable by its
// owner only.
func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	if err := os.WriteFile(path, []byte("previous"), 0o600); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("codec failed")
	err := writeAtomic(path, func(w io.Writer) error {
		io.WriteString(w, "half of the new")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("writeAtomic: %v, want the write's error", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "previous" {
		t.Errorf("after a failed write the file holds %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("files left: %v", entries)
	}
	if err := writeAtomic(path, func(w io.Writer) error {
		_, err := io.WriteString(w, "new")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Errorf("the file holds %q, want %q", b, "new")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode())
	}
}

func TestStateFlags(t *testing.T) {
	if _, err := parseFlags([]string{"-state", "x", "-save-every", "-1s"}, noEnv, io.Discard); !errors.Is(err, errUsage) {
		t.Errorf("-save-every -1s: %v, want a usage error", err)
	}
	cfg, err := parseFlags(nil, func(k string) (string, bool) {
		v, ok := map[string]string{"SESSIOND_STATE": "/var/lib/sessiond/state", "SESSIOND_START_EMPTY": "true"}[k]
		return v, ok
	}, io.Discard)
	if err != nil || cfg.stateFile != "/var/lib/sessiond/state" || !cfg.startEmpty || cfg.saveEvery.String() != "1m0s" {
		t.Errorf("from the environment: %+v, %v", cfg, err)
	}
}
