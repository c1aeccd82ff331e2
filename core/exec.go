package core

import (
	"context"
	"encoding/json"
	"io"
	"sync"
	"syscall"
	"time"

	"github.com/sporehq/spore/sdk"
)

// Cmd describes a command to run on a context, in the manner of os/exec.
type Cmd struct {
	// Argv is the program and its arguments, run without a shell.
	Argv []string
	// Shell, if set instead of Argv, is run by /bin/sh -c.
	Shell string
	// Env adds to (or replaces in) the core's environment.
	Env map[string]string
	// Dir is the working directory (~ expands on the target).
	Dir string
	// Stdin is copied to the command; nil means it reads EOF at once.
	Stdin io.Reader
	// Stdout and Stderr receive the command's output; nil discards it.
	// With PTY, everything arrives on Stdout.
	Stdout, Stderr io.Writer
	// PTY runs the command on a new pseudo-terminal of Rows x Cols.
	PTY        bool
	Rows, Cols int
}

// Process is a command started with Start.
type Process struct {
	c      *Context
	rid    uint32
	cl     *call
	io     *Channel
	errch  *Channel
	copies sync.WaitGroup
	exit   chan int
	once   sync.Once
	status int
	err    error
}

// Run starts cmd and waits for it. It returns the command's exit status
// (128+N for death by signal N); err is set only when spore itself failed.
// Cancelling ctx kills the remote process group.
func (c *Context) Run(ctx context.Context, cmd *Cmd) (int, error) {
	p, err := c.Start(ctx, cmd)
	if err != nil {
		return -1, err
	}
	return p.Wait(ctx)
}

// Start starts cmd on the context and returns at once.
func (c *Context) Start(ctx context.Context, cmd *Cmd) (*Process, error) {
	iochan, err := c.conn.newChannel()
	if err != nil {
		return nil, c.lost(err)
	}
	p := &Process{c: c, io: iochan, exit: make(chan int, 1)}
	req := map[string]any{"op": "spawn", "env": cmd.Env, "dir": cmd.Dir, "ch": iochan.id}
	if cmd.Shell != "" {
		req["shell"] = cmd.Shell
	} else {
		req["argv"] = cmd.Argv
	}
	if cmd.PTY {
		req["pty"] = true
		req["rows"], req["cols"] = cmd.Rows, cmd.Cols
	} else {
		if p.errch, err = c.conn.newChannel(); err != nil {
			return nil, c.lost(err)
		}
		req["errch"] = p.errch.id
	}
	id, cl, err := c.conn.start(req, true)
	if err != nil {
		return nil, c.lost(err)
	}
	p.rid, p.cl = id, cl
	if err := c.conn.wait(ctx, id, cl, nil); err != nil {
		c.conn.forget(id)
		iochan.Close()
		if p.errch != nil {
			p.errch.Close()
		}
		return nil, err
	}
	out := func(w io.Writer, ch *Channel) {
		defer p.copies.Done()
		if w == nil {
			w = io.Discard
		}
		_, _ = io.Copy(w, ch)
	}
	p.copies.Add(1)
	go out(cmd.Stdout, iochan)
	if p.errch != nil {
		p.copies.Add(1)
		go out(cmd.Stderr, p.errch)
	}
	go func() {
		if cmd.Stdin != nil {
			_, _ = io.Copy(iochan, cmd.Stdin)
		}
		if !cmd.PTY {
			_ = iochan.CloseWrite()
		}
	}()
	go func() {
		select {
		case f := <-cl.events:
			var ev struct {
				Exit int `json:"exit"`
			}
			_ = json.Unmarshal(f.Payload, &ev)
			p.exit <- ev.Exit
		case <-c.conn.done:
		}
	}()
	return p, nil
}

// Signal sends sig to the process's group on the target.
func (p *Process) Signal(ctx context.Context, sig syscall.Signal) error {
	return p.c.conn.call(ctx, map[string]any{"op": "signal", "id": p.rid, "signal": int(sig)}, nil)
}

// Resize sets the terminal size of a PTY process.
func (p *Process) Resize(ctx context.Context, rows, cols int) error {
	return p.c.conn.call(ctx, map[string]any{"op": "resize", "ch": p.io.id, "rows": rows, "cols": cols}, nil)
}

// Stdin returns a writer to the process's stdin when Cmd.Stdin was nil
// and PTY was set (an interactive shell feeds it itself).
func (p *Process) Stdin() io.Writer { return p.io }

// Wait waits for the process to exit and its output to be copied. If ctx
// ends first, the remote process group is killed.
func (p *Process) Wait(ctx context.Context) (int, error) {
	p.once.Do(func() {
		defer p.c.conn.forget(p.rid)
		select {
		case p.status = <-p.exit:
		case <-p.c.conn.done:
			p.status, p.err = -1, p.c.conn.Err()
		case <-ctx.Done():
			kctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = p.Signal(kctx, syscall.SIGKILL)
			cancel()
			select {
			case p.status = <-p.exit:
			case <-p.c.conn.done:
			case <-time.After(5 * time.Second):
			}
			p.err = &sdk.Error{Kind: sdk.KindClosed, Msg: "command cancelled", Err: ctx.Err()}
		}
		if p.err == nil {
			done := make(chan struct{})
			go func() { p.copies.Wait(); close(done) }()
			select {
			case <-done:
			case <-p.c.conn.done:
				p.err = p.c.conn.Err()
			}
		}
		p.io.Close()
		if p.errch != nil {
			p.errch.Close()
		}
	})
	return p.status, p.err
}
