// Package redistest starts real redis-server processes for tests: one
// standalone server (Server) or a six-node cluster (Cluster), each a child
// of the test in its own process group, on free ports, without persistence,
// killed when the test ends. Fault tests stop, kill and restart them.
//
// Without redis-server on the PATH a test is skipped, except when the
// environment has CI=true: there it fails, so that CI never passes by
// testing nothing.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a server may take to answer PING, and a
// cluster to reach cluster_state:ok (about 3 s on an idle 2-core machine;
// a starved one needs more).
const startTimeout = 30 * time.Second

// Redis is one redis-server child process.
type Redis struct {
	// Addr is host:port of the server.
	Addr string

	t    testing.TB
	args []string
	dir  string

	mu  sync.Mutex
	cmd *exec.Cmd
	out *os.File
}

// need returns the path of redis-server, skipping (or, with CI=true,
// failing) the test without it.
func need(t testing.TB, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required when CI=true: %v", tool, err)
		}
		t.Skipf("%s not found (make tools installs it): %v", tool, err)
	}
	return p
}

// Server starts a standalone redis-server on a free port, waits until it
// answers PING, and kills it when the test ends. Extra arguments go to
// redis-server (e.g. "--hash-max-listpack-value", "128").
func Server(t testing.TB, extra ...string) *Redis {
	t.Helper()
	need(t, "redis-server")
	port := freePort(t, false)
	r := newRedis(t, port, t.TempDir(), extra)
	r.start()
	return r
}

func newRedis(t testing.TB, port int, dir string, extra []string) *Redis {
	args := []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir,
		// A test's server never needs to protect itself from a test.
		"--protected-mode", "no",
	}
	r := &Redis{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), t: t, args: append(args, extra...), dir: dir}
	t.Cleanup(r.Kill)
	return r
}

// start runs the process and waits until it answers PING.
func (r *Redis) start() {
	r.t.Helper()
	out, err := os.OpenFile(filepath.Join(r.dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		r.t.Fatal(err)
	}
	cmd := exec.Command("redis-server", r.args...)
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so that a signal meant for the test's
	// terminal does not reach it and Kill reaches all of it; and killed
	// with the test process should that die first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		r.t.Fatalf("starting redis-server: %v", err)
	}
	r.mu.Lock()
	r.cmd, r.out = cmd, out
	r.mu.Unlock()
	deadline := time.Now().Add(startTimeout)
	for {
		if v, err := r.Do("PING"); err == nil && v == "PONG" {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(out.Name())
			r.t.Fatalf("redis-server on %s did not answer PING within %v; its log:\n%s", r.Addr, startTimeout, log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Kill kills the server (SIGKILL) and waits for it to exit; killing a
// killed server does nothing. Cleanup calls it.
func (r *Redis) Kill() {
	r.mu.Lock()
	cmd, out := r.cmd, r.out
	r.cmd, r.out = nil, nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
	out.Close()
}

// Stop freezes the server (SIGSTOP): connections stay open and nothing
// answers, as with a stalled or partitioned node.
func (r *Redis) Stop() { r.signal(syscall.SIGSTOP) }

// Cont resumes a server frozen by Stop.
func (r *Redis) Cont() { r.signal(syscall.SIGCONT) }

func (r *Redis) signal(s syscall.Signal) {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		r.t.Fatalf("redis-server on %s is not running", r.Addr)
	}
	if err := syscall.Kill(-r.cmd.Process.Pid, s); err != nil {
		r.t.Fatal(err)
	}
}

// Restart starts the server again on the same port and directory, after
// Kill (or kills it first). A standalone server comes back empty (no
// persistence); a cluster node keeps its nodes.conf and rejoins.
func (r *Redis) Restart() {
	r.t.Helper()
	r.Kill()
	r.start()
}

// Do sends one command to the server on a fresh connection and returns its
// reply as text: a simple or bulk string as is, an integer in decimal, an
// array as its elements joined by newlines, a nil as "". An error reply is
// returned as an error. It is for setting up and inspecting servers in
// tests, not for the code under test.
func (r *Redis) Do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", r.Addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		return "", err
	}
	return readReply(bufio.NewReader(c))
}

// MustDo is Do that fails the test on an error.
func (r *Redis) MustDo(args ...string) string {
	r.t.Helper()
	v, err := r.Do(args...)
	if err != nil {
		r.t.Fatalf("%s: %v: %v", r.Addr, args, err)
	}
	return v
}

func readReply(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("redistest: empty reply line")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", err
		}
		parts := make([]string, n)
		for i := range parts {
			if parts[i], err = readReply(br); err != nil {
				return "", err
			}
		}
		return strings.Join(parts, "\n"), nil
	}
	return "", fmt.Errorf("redistest: unexpected reply %q", line)
}

// freePort returns a port nobody listens on (and, for a cluster node, whose
// bus port, port+10000, is free too). Another process may take it before
// redis-server does; start then fails loudly rather than flakily passing.
func freePort(t testing.TB, bus bool) int {
	t.Helper()
	for range 200 {
		port := 20000 + rand.IntN(30000)
		if !portFree(port) || (bus && !portFree(port+10000)) {
			continue
		}
		return port
	}
	t.Fatal("redistest: no free port")
	return 0
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// A RedisCluster is six redis-server nodes in cluster mode: three masters
// with one replica each.
type RedisCluster struct {
	// Addrs are the nodes' addresses, for rueidis.ClientOption.InitAddress.
	Addrs []string
	// Nodes are the nodes, masters first as redis-cli assigned them at
	// creation (a failover swaps roles; ask a node with Role).
	Nodes []*Redis
}

// Cluster starts six cluster nodes with the given cluster-node-timeout,
// joins them with redis-cli --cluster create (three masters, one replica
// each), waits until every node reports cluster_state:ok, and kills them
// when the test ends. Use a long node timeout (5 s) except in failover
// tests: a 1 s timeout fails over spuriously on a starved machine.
func Cluster(t testing.TB, nodeTimeout time.Duration) *RedisCluster {
	t.Helper()
	need(t, "redis-server")
	need(t, "redis-cli")
	c := &RedisCluster{}
	for i := range 6 {
		port := freePort(t, true)
		n := newRedis(t, port, filepath.Join(t.TempDir(), strconv.Itoa(i)), []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.FormatInt(nodeTimeout.Milliseconds(), 10),
		})
		if err := os.MkdirAll(n.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		n.start()
		c.Nodes = append(c.Nodes, n)
		c.Addrs = append(c.Addrs, n.Addr)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitOK(t, startTimeout)
	return c
}

// WaitOK waits until every running node reports cluster_state:ok and knows
// all 16384 slots as assigned, failing the test after timeout.
func (c *RedisCluster) WaitOK(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok := true
		var last string
		for _, n := range c.Nodes {
			n.mu.Lock()
			running := n.cmd != nil
			n.mu.Unlock()
			if !running {
				continue
			}
			info, err := n.Do("CLUSTER", "INFO")
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
				ok, last = false, fmt.Sprintf("%s: %v %s", n.Addr, err, info)
				break
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ok within %v: %s", timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Role returns "master" or "slave" as the node reports it (ROLE).
func (r *Redis) Role() (string, error) {
	v, err := r.Do("ROLE")
	if err != nil {
		return "", err
	}
	role, _, _ := strings.Cut(v, "\n")
	return role, nil
}
