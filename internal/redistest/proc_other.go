//go:build !linux

package redistest

import (
	"os"
	"syscall"
)

var syscallTERM os.Signal = syscall.SIGTERM

func procAttr() *syscall.SysProcAttr { return nil }
