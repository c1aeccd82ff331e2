package rpc

import (
	"io"
	"os"
	"syscall"
)

// blockingReader reads with blocking reads on the calling goroutine's
// thread instead of Go's poller.
type blockingReader struct {
	f  *os.File
	rc syscall.RawConn
}

// BlockingReader returns a reader of f (a pipe or socket) that makes
// blocking reads on the calling goroutine's thread instead of going through
// Go's poller: data then reaches the reader without a netpoller wake-up,
// which is most of a local round trip (about 5 µs against 40 µs). Use it
// for one long-lived reader goroutine per descriptor: that goroutine holds
// a thread while it waits. The read ends when the writer closes its end (or
// the descriptor is shut down). If f cannot be switched to blocking mode, f
// itself is returned.
func BlockingReader(f *os.File) io.Reader {
	rc, err := f.SyscallConn()
	if err != nil {
		return f
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.SetNonblock(int(fd), false) }); err != nil || serr != nil {
		return f
	}
	return &blockingReader{f: f, rc: rc}
}

func (b *blockingReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var rerr error
	err := b.rc.Read(func(fd uintptr) bool {
		for {
			n, rerr = syscall.Read(int(fd), p)
			if rerr != syscall.EINTR {
				break
			}
		}
		return rerr != syscall.EAGAIN
	})
	if err != nil {
		return 0, err
	}
	if rerr != nil {
		return 0, rerr
	}
	if n <= 0 {
		return 0, io.EOF
	}
	return n, nil
}
