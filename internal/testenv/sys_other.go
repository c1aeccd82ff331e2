//go:build !linux

package testenv

import "syscall"

// childAttr is the SysProcAttr of the daemons the tests own (sshd): their
// own process group.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
