//go:build !linux

package bench

import "syscall"

// childProcAttr is empty where there is no parent-death signal; children
// are still stopped by PID when the harness exits normally.
func childProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
