//go:build !linux

package main

import "syscall"

// childProcAttr is empty where the kernel cannot kill children with their
// parent.
func childProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
