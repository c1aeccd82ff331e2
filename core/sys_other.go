//go:build !linux

package core

import "syscall"

// pluginProcAttr puts a plugin in its own process group. Without a
// parent-death signal, a plugin notices spore's death when go-plugin's
// connection to it closes.
func pluginProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
