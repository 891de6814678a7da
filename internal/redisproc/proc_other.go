//go:build !unix

package redisproc

import (
	"os"
	"syscall"
)

// stopSignal is a kill: there is no SIGTERM to send outside unix.
var stopSignal os.Signal = os.Kill

func procAttr(bool) *syscall.SysProcAttr { return nil }
