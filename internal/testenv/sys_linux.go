package testenv

import "syscall"

// childAttr is the SysProcAttr of the daemons the tests own (sshd): their
// own process group, and SIGTERM when the test binary dies.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
