package core

import "syscall"

// pluginProcAttr makes a plugin die with spore (parent-death signal) and
// lead its own process group.
func pluginProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
