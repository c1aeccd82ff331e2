package rpc

import "syscall"

// Socketpair returns a connected pair of Unix sockets of type typ
// (syscall.SOCK_STREAM, SOCK_SEQPACKET), both close-on-exec.
func Socketpair(typ int) ([2]int, error) {
	return syscall.Socketpair(syscall.AF_UNIX, typ|syscall.SOCK_CLOEXEC, 0)
}
