package redisproc

import (
	"os"
	"syscall"
)

var stopSignal os.Signal = syscall.SIGTERM

// procAttr has the kernel signal redis-server when the parent dies without
// stopping it: SIGTERM for a detached server, so it flushes its append-only
// file, SIGKILL for a throwaway one. A detached server also gets its own
// process group, so a terminal's Ctrl-C reaches the parent only.
func procAttr(detached bool) *syscall.SysProcAttr {
	if detached {
		return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	}
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
