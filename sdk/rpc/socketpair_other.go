//go:build !linux

package rpc

import "syscall"

// Socketpair returns a connected pair of Unix sockets of type typ
// (syscall.SOCK_STREAM, SOCK_SEQPACKET), both close-on-exec.
func Socketpair(typ int) ([2]int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, typ, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	return fds, err
}
