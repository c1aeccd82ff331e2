package core

import "syscall"

// pluginProcAttr makes a plugin die with spore (parent-death signal).
func pluginProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
