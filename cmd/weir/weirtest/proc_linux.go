package weirtest

import "syscall"

// sysProcAttr asks the kernel to kill the broker if the test binary dies
// (a test timeout, a crash), so no broker outlives its tests.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
