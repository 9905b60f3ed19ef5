package redistest

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A server answers, keeps nothing across Restart (no persistence), comes
// back on the same address, and Stop freezes it until Cont.
func TestServerLifecycle(t *testing.T) {
	r := Server(t)
	r.MustDo("SET", "k", "v")
	if v := r.MustDo("GET", "k"); v != "v" {
		t.Fatalf("GET = %q", v)
	}
	if v := r.MustDo("CONFIG", "GET", "appendonly"); v != "appendonly\nno" {
		t.Errorf("appendonly: %q", v)
	}
	r.Stop()
	if _, err := r.Do("PING"); err == nil {
		t.Fatal("a stopped server answered")
	}
	r.Cont()
	if v := r.MustDo("PING"); v != "PONG" {
		t.Fatalf("PING after Cont = %q", v)
	}
	addr := r.Addr
	r.Kill()
	if _, err := r.Do("PING"); err == nil {
		t.Fatal("a killed server answered")
	}
	r.Restart()
	if r.Addr != addr {
		t.Fatalf("restarted on %s, was %s", r.Addr, addr)
	}
	if v, err := r.Do("GET", "k"); err != nil || v != "" {
		t.Fatalf("GET after restart = %q, %v; want nothing kept", v, err)
	}
}

// A cluster has three masters and three replicas, all reporting ok.
func TestCluster(t *testing.T) {
	c := Cluster(t, 5*time.Second)
	roles := map[string]int{}
	for _, n := range c.Nodes {
		role, err := n.Role()
		if err != nil {
			t.Fatal(err)
		}
		roles[role]++
	}
	if roles["master"] != 3 || roles["slave"] != 3 {
		t.Fatalf("roles %v, want 3 masters and 3 replicas", roles)
	}
}
