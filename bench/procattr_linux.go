package bench

import "syscall"

// childProcAttr makes the kernel kill a child (server node, worker) when
// the harness dies, so that no load outlives the run.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
