//go:build !linux

package core

import "syscall"

// pluginProcAttr: without a parent-death signal, a plugin notices spore's
// death when go-plugin's connection to it closes.
func pluginProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: false}
}
