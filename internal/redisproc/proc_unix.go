//go:build unix && !linux

package redisproc

import (
	"os"
	"syscall"
)

var stopSignal os.Signal = syscall.SIGTERM

// procAttr gives a detached server its own process group, so a terminal's
// Ctrl-C reaches the parent only. Without Linux's Pdeathsig nothing stops
// the server if the parent dies without doing so.
func procAttr(detached bool) *syscall.SysProcAttr {
	if detached {
		return &syscall.SysProcAttr{Setpgid: true}
	}
	return nil
}
