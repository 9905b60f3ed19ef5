//go:build !linux

package main

import "syscall"

// childAttr: without Linux's Pdeathsig, redis-server is ended by kill only.
func childAttr() *syscall.SysProcAttr { return nil }
