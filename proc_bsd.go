//go:build unix && !linux

package main

import "syscall"

// childProcAttr puts redis-server in its own process group, so a terminal's
// Ctrl-C reaches cairn only.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
