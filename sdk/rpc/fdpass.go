package rpc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// FDEnv names the environment variable that tells a plugin which of its
// descriptors is the fd-passing socket.
const FDEnv = "SPORE_FD_SOCKET"

// FDPass sends and receives file descriptors, each tagged with a token, over
// a SOCK_SEQPACKET Unix socket. Either side may send; a receiver waits for a
// token it was told about over gRPC.
type FDPass struct {
	conn *net.UnixConn

	mu      sync.Mutex
	arrived map[uint64]*os.File
	waiting map[uint64]chan *os.File
	err     error
	next    atomic.Uint64
}

// NewFDPassPair returns a connected socket pair: the host keeps the first
// (wrapped), the second is handed to the plugin as an extra file.
func NewFDPassPair() (*FDPass, *os.File, error) {
	fds, err := Socketpair(syscall.SOCK_SEQPACKET)
	if err != nil {
		return nil, nil, fmt.Errorf("fd socket pair: %w", err)
	}
	mine := os.NewFile(uintptr(fds[0]), "fdpass-host")
	theirs := os.NewFile(uintptr(fds[1]), "fdpass-plugin")
	p, err := NewFDPass(mine)
	if err != nil {
		theirs.Close()
		return nil, nil, err
	}
	return p, theirs, nil
}

// NewFDPass wraps f, a SOCK_SEQPACKET Unix socket, and starts reading it.
func NewFDPass(f *os.File) (*FDPass, error) {
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("fd socket: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, errors.New("fd socket is not a unix socket")
	}
	p := &FDPass{conn: uc, arrived: map[uint64]*os.File{}, waiting: map[uint64]chan *os.File{}}
	go p.readLoop()
	return p, nil
}

// NewToken returns a token unique to this side. Host and plugin tokens
// differ in their top bit, so they never collide.
func (p *FDPass) NewToken(plugin bool) uint64 {
	t := p.next.Add(1)
	if plugin {
		t |= 1 << 63
	}
	return t
}

// Send passes a duplicate of f under token; the caller still owns f.
func (p *FDPass) Send(token uint64, f *os.File) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], token)
	sc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	err = sc.Control(func(fd uintptr) {
		_, _, werr = p.conn.WriteMsgUnix(b[:], syscall.UnixRights(int(fd)), nil)
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("passing descriptor: %w", err)
	}
	return nil
}

// Receive waits for the descriptor sent under token.
func (p *FDPass) Receive(ctx context.Context, token uint64) (*os.File, error) {
	p.mu.Lock()
	if f, ok := p.arrived[token]; ok {
		delete(p.arrived, token)
		p.mu.Unlock()
		return f, nil
	}
	if p.err != nil {
		p.mu.Unlock()
		return nil, p.err
	}
	ch := make(chan *os.File, 1)
	p.waiting[token] = ch
	p.mu.Unlock()
	select {
	case f, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("fd socket closed before descriptor %d arrived", token)
		}
		return f, nil
	case <-ctx.Done():
		p.mu.Lock()
		delete(p.waiting, token)
		p.mu.Unlock()
		return nil, ctx.Err()
	}
}

// Close closes the socket; pending receives fail.
func (p *FDPass) Close() error { return p.conn.Close() }

func (p *FDPass) readLoop() {
	buf := make([]byte, 8)
	oob := make([]byte, syscall.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := p.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			p.fail(err)
			return
		}
		msgs, perr := syscall.ParseSocketControlMessage(oob[:oobn])
		if perr != nil || n != 8 {
			continue
		}
		token := binary.BigEndian.Uint64(buf)
		var got *os.File
		for _, m := range msgs {
			fds, err := syscall.ParseUnixRights(&m)
			if err != nil {
				continue
			}
			for _, fd := range fds {
				syscall.CloseOnExec(fd)
				if got == nil {
					got = os.NewFile(uintptr(fd), fmt.Sprintf("passed-%d", token))
				} else {
					syscall.Close(fd)
				}
			}
		}
		if got == nil {
			continue
		}
		p.mu.Lock()
		if ch, ok := p.waiting[token]; ok {
			delete(p.waiting, token)
			ch <- got
		} else {
			p.arrived[token] = got
		}
		p.mu.Unlock()
	}
}

func (p *FDPass) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = fmt.Errorf("fd socket: %w", err)
	for t, ch := range p.waiting {
		close(ch)
		delete(p.waiting, t)
	}
}
