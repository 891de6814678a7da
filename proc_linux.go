package main

import "syscall"

// childProcAttr puts redis-server in its own process group (a terminal's
// Ctrl-C reaches cairn only) and has the kernel stop it gracefully if cairn
// dies without doing so.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
