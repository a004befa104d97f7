//go:build !linux

package compat

import "syscall"

// childProcAttr is the default elsewhere: cleanups stop helper processes.
func childProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
