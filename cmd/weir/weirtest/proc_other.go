//go:build !linux

package weirtest

import "syscall"

// sysProcAttr has nothing to add outside Linux; Start's cleanup still kills
// the broker.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
