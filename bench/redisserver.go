package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// redisServer is a redis-server child process of the harness, on a free
// loopback port, without persistence. kill ends it; the harness calls it
// on every way out of the Redis group (and, on Linux, the kernel kills the
// child should the harness die first).
type redisServer struct {
	addr   string
	cmd    *exec.Cmd
	exited chan struct{}
	log    string
}

// startRedis starts path (redis-server) on a free port and waits until it
// answers PING. The log goes to a file in dir.
func startRedis(path, dir string) (*redisServer, error) {
	var last error
	// A free port found by listening and closing may be taken by someone
	// else before redis-server binds it: try a few.
	for range 3 {
		r, err := startRedisOnce(path, dir)
		if err == nil {
			return r, nil
		}
		last = err
	}
	return nil, last
}

func startRedisOnce(path, dir string) (*redisServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	logFile := filepath.Join(dir, "redis-"+strconv.Itoa(port)+".log")
	out, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	defer out.Close() // the child keeps its own descriptor
	cmd := exec.Command(path,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir,
		"--protected-mode", "no")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", path, err)
	}
	r := &redisServer{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd, exited: make(chan struct{}), log: logFile}
	go func() {
		_ = cmd.Wait()
		close(r.exited)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := ping(r.addr); err == nil {
			return r, nil
		} else if time.Now().After(deadline) {
			r.kill()
			return nil, fmt.Errorf("redis-server on %s did not answer PING within 20s: %w (log: %s)", r.addr, err, logFile)
		}
		select {
		case <-r.exited:
			b, _ := os.ReadFile(logFile)
			return nil, fmt.Errorf("redis-server on %s exited at start: %s", r.addr, strings.TrimSpace(string(b)))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// ping sends one inline PING and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return errors.New("PING answered " + strconv.Quote(line))
	}
	return nil
}

// kill ends the server (SIGKILL: it holds nothing worth saving) and waits
// for it to exit; a second call does nothing.
func (r *redisServer) kill() {
	select {
	case <-r.exited:
		return
	default:
	}
	_ = r.cmd.Process.Kill()
	<-r.exited
}
