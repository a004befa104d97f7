package main

import "syscall"

// childProcAttr has the kernel kill a child process if the test binary dies
// (a test timeout, a crash), so no server outlives its test.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
