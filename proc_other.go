//go:build !unix

package main

import (
	"os"
	"syscall"
)

var stopSignal os.Signal = os.Kill

func childProcAttr() *syscall.SysProcAttr { return nil }

func lockDir(string) (func(), error) { return func() {}, nil }
