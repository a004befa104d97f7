package compat

import "syscall"

// childProcAttr makes the kernel kill a helper process (group member,
// ZooKeeper, Burrow) if the test binary dies without running its cleanups,
// for example on a -timeout panic.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
