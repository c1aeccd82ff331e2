package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"github.com/creack/pty"

	"github.com/sporehq/spore/sdk"
	"github.com/sporehq/spore/sdk/rpc"
)

// proc is a booting (later booted) process's byte stream as the host holds
// it: stdin and stdout, the stderr, the terminal if any, and its exit.
type proc interface {
	io.ReadWriteCloser
	// CloseWrite closes the process's stdin.
	CloseWrite() error
	Stderr() io.Reader
	TTY() io.ReadWriteCloser
	// Done is closed when the process has exited; nil when that cannot be
	// known (a stream owned by a plugin).
	Done() <-chan struct{}
	// ExitStatus is valid once Done is closed: the status, or 128+N for
	// death by signal N.
	ExitStatus() int
	// Kill ends the process and closes the stream.
	Kill()
}

// localProc is a process the host spawned itself.
type localProc struct {
	cmd    *exec.Cmd
	stdin  *os.File
	stdout *os.File
	out    io.Reader
	stderr *os.File
	tty    *os.File
	done   chan struct{}
	status int
	once   sync.Once
}

// spawnLocal starts req on this machine with binary-clean pipes and, with
// req.TTY, a new session whose controlling terminal is a fresh pty.
func spawnLocal(req sdk.SpawnRequest, env []string) (*localProc, error) {
	if len(req.Argv) == 0 {
		return nil, errors.New("empty command")
	}
	cmd := exec.Command(req.Argv[0], req.Argv[1:]...)
	cmd.Env = append(append([]string(nil), env...), req.Env...)
	cmd.Dir = req.Dir
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return nil, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var master, slave *os.File
	if req.TTY {
		master, slave, err = pty.Open()
		if err != nil {
			for _, f := range []*os.File{inR, inW, outR, outW, errR, errW} {
				f.Close()
			}
			return nil, fmt.Errorf("allocating a pty: %w", err)
		}
		cmd.ExtraFiles = []*os.File{slave}
		cmd.SysProcAttr.Setctty = true
		cmd.SysProcAttr.Ctty = 3
	}
	err = cmd.Start()
	inR.Close()
	outW.Close()
	errW.Close()
	if slave != nil {
		slave.Close()
	}
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		if master != nil {
			master.Close()
		}
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return nil, &sdk.Error{Kind: sdk.KindNotFound, Msg: fmt.Sprintf("%s: command not found", req.Argv[0]), Err: err}
		}
		return nil, err
	}
	p := &localProc{cmd: cmd, stdin: inW, stdout: outR, stderr: errR, tty: master, done: make(chan struct{})}
	p.out = rpc.BlockingReader(outR)
	go func() {
		_ = cmd.Wait()
		p.status = exitStatus(cmd.ProcessState)
		close(p.done)
	}()
	return p, nil
}

func exitStatus(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

func (p *localProc) Read(b []byte) (int, error)  { return p.out.Read(b) }
func (p *localProc) Write(b []byte) (int, error) { return p.stdin.Write(b) }
func (p *localProc) CloseWrite() error           { return p.stdin.Close() }
func (p *localProc) Stderr() io.Reader           { return p.stderr }
func (p *localProc) Done() <-chan struct{}       { return p.done }
func (p *localProc) ExitStatus() int             { return p.status }

func (p *localProc) TTY() io.ReadWriteCloser {
	if p.tty == nil {
		return nil
	}
	return p.tty
}

// Close closes the host's ends; the core sees EOF on stdin and exits.
func (p *localProc) Close() error {
	p.once.Do(func() {
		p.stdin.Close()
		p.stdout.Close()
		if p.tty != nil {
			p.tty.Close()
		}
	})
	return nil
}

func (p *localProc) Kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	_ = p.cmd.Process.Kill()
	p.Close()
}

// connProc is a stream owned by a plugin (an ssh session), passed to the
// host as one end of a socket pair. Reads are blocking reads on the
// reader's thread, as for a local core's pipe.
type connProc struct {
	f      *os.File
	r      io.Reader
	stderr io.Reader
	once   sync.Once
}

func newConnProc(f *os.File, stderr io.Reader) *connProc {
	return &connProc{f: f, r: rpc.BlockingReader(f), stderr: stderr}
}

func (p *connProc) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p *connProc) Write(b []byte) (int, error) { return p.f.Write(b) }
func (p *connProc) Stderr() io.Reader           { return p.stderr }
func (p *connProc) TTY() io.ReadWriteCloser     { return nil }
func (p *connProc) Done() <-chan struct{}       { return nil }
func (p *connProc) ExitStatus() int             { return -1 }

// CloseWrite shuts the socket for writing: the plugin closes the remote
// side's stdin.
func (p *connProc) CloseWrite() error {
	rc, err := p.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Shutdown(int(fd), syscall.SHUT_WR) }); err != nil {
		return err
	}
	return serr
}

// Close shuts the socket both ways (a blocked reader wakes with EOF) and
// closes it.
func (p *connProc) Close() error {
	p.once.Do(func() {
		if rc, err := p.f.SyscallConn(); err == nil {
			_ = rc.Control(func(fd uintptr) { _ = syscall.Shutdown(int(fd), syscall.SHUT_RDWR) })
		}
		p.f.Close()
	})
	return nil
}

func (p *connProc) Kill() { p.Close() }

// remoteProc is a process spawned by a parent context's core; its stdin
// and stdout ride one channel, its stderr and terminal one each.
type remoteProc struct {
	ctx    *Context
	rid    uint32
	io     *Channel
	errch  *Channel
	ttych  *Channel
	done   chan struct{}
	status int
	once   sync.Once
}

func (p *remoteProc) Read(b []byte) (int, error)  { return p.io.Read(b) }
func (p *remoteProc) Write(b []byte) (int, error) { return p.io.Write(b) }
func (p *remoteProc) CloseWrite() error           { return p.io.CloseWrite() }
func (p *remoteProc) Done() <-chan struct{}       { return p.done }
func (p *remoteProc) ExitStatus() int             { return p.status }

func (p *remoteProc) Stderr() io.Reader {
	if p.errch == nil {
		return nil
	}
	return p.errch
}

func (p *remoteProc) TTY() io.ReadWriteCloser {
	if p.ttych == nil {
		return nil
	}
	return p.ttych
}

func (p *remoteProc) Close() error {
	p.once.Do(func() {
		for _, ch := range []*Channel{p.io, p.errch, p.ttych} {
			if ch != nil {
				_ = ch.Close()
			}
		}
	})
	return nil
}

func (p *remoteProc) Kill() {
	_ = p.ctx.conn.call(context.Background(), map[string]any{"op": "signal", "id": p.rid, "signal": int(syscall.SIGKILL)}, nil)
	p.Close()
}
