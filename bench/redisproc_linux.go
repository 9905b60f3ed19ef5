package main

import "syscall"

// childAttr puts redis-server in its own process group, so that a Ctrl-C
// meant for the harness does not reach it first, and has the kernel kill it
// if the harness dies without calling kill.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
