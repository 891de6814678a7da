package redistest

import (
	"os"
	"syscall"
)

var syscallTERM os.Signal = syscall.SIGTERM

// procAttr kills the server if the test binary dies without cleanup.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
