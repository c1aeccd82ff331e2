package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/sporehq/spore/sdk"
)

// Facts are what a core reports about itself when it comes up.
type Facts struct {
	Python         string `json:"python"`
	Implementation string `json:"implementation"`
	Executable     string `json:"executable"`
	Platform       string `json:"platform"`
	System         string `json:"system"`
	Release        string `json:"release"`
	Machine        string `json:"machine"`
	PID            int    `json:"pid"`
	UID            int    `json:"uid"`
	GID            int    `json:"gid"`
	User           string `json:"user"`
	Hostname       string `json:"hostname"`
	Cwd            string `json:"cwd"`
}

// Phase is one named step of a hop's setup and when it started.
type Phase struct {
	Name     string        `json:"name"`
	Start    time.Time     `json:"-"`
	Duration time.Duration `json:"duration_ns"`
}

func phasesFrom(marks []Phase) []Phase {
	out := make([]Phase, 0, len(marks))
	for i := 0; i+1 < len(marks); i++ {
		p := marks[i]
		p.Duration = marks[i+1].Start.Sub(p.Start)
		out = append(out, p)
	}
	return out
}

// Context is a connected core on some target: the end of a chain of hops.
// Its methods are safe for concurrent use.
type Context struct {
	h      *Host
	id     uint64
	name   string
	hop    Hop
	parent *Context
	proc   proc
	conn   *conn
	plugin *pluginClient
	facts  Facts
	phases []Phase

	mu       sync.Mutex
	children []*Context
	closed   bool
}

func newContext(h *Host, name string, hop Hop, parent *Context, p proc, rest []byte, plugin *pluginClient, id uint64) *Context {
	r := io.MultiReader(&byteReader{b: rest}, p)
	return &Context{h: h, id: id, name: name, hop: hop, parent: parent, proc: p, plugin: plugin,
		conn: newConn(name, p, r)}
}

type byteReader struct{ b []byte }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// Name is the context's name, as shown in ps on the target.
func (c *Context) Name() string { return c.name }

// Hop is the hop this context was opened with.
func (c *Context) Hop() Hop { return c.hop }

// Parent is the context this one was opened through (nil: this machine).
func (c *Context) Parent() *Context { return c.parent }

// Facts returns what the core reported when it came up.
func (c *Context) Facts() Facts { return c.facts }

// Phases returns the setup timing of this hop.
func (c *Context) Phases() []Phase { return append([]Phase(nil), c.phases...) }

// Done is closed when the connection to the context has ended.
func (c *Context) Done() <-chan struct{} { return c.conn.done }

// Err returns why the connection ended (nil while it is up). A context
// whose parent died reports KindParentLost.
func (c *Context) Err() error { return c.conn.Err() }

func (c *Context) addChild(k *Context) {
	c.mu.Lock()
	c.children = append(c.children, k)
	c.mu.Unlock()
}

// Close shuts the context and every context opened through it. The core
// kills what it spawned and exits.
func (c *Context) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	kids := c.children
	c.mu.Unlock()
	for i := len(kids) - 1; i >= 0; i-- {
		_ = kids[i].Close()
	}
	closed := &sdk.Error{Kind: sdk.KindClosed, Msg: fmt.Sprintf("context %s closed", c.name)}
	c.conn.closing(closed)
	if c.conn.Err() == nil {
		// Closing stdin is the shutdown signal; the core exits at EOF.
		_ = c.proc.CloseWrite()
		select {
		case <-c.conn.done:
		case <-time.After(3 * time.Second):
		}
	}
	c.conn.fail(closed)
	c.proc.Close()
	if c.plugin != nil {
		release(c.plugin, c.id)
	}
	return nil
}

// Ping sends a ping and waits for the answer.
func (c *Context) Ping(ctx context.Context) (time.Duration, error) {
	t := time.Now()
	err := c.conn.call(ctx, map[string]string{"op": "ping"}, nil)
	return time.Since(t), err
}

// PingMany sends n pings without waiting between them and waits for all
// the answers: a measure of the protocol's throughput.
func (c *Context) PingMany(ctx context.Context, n int) error {
	type pending struct {
		id uint32
		cl *call
	}
	ps := make([]pending, 0, n)
	for i := 0; i < n; i++ {
		id, cl, err := c.conn.start(map[string]string{"op": "ping"}, false)
		if err != nil {
			return err
		}
		ps = append(ps, pending{id, cl})
	}
	for _, p := range ps {
		if err := c.conn.wait(ctx, p.id, p.cl, nil); err != nil {
			return err
		}
	}
	return nil
}

// spawn starts a process through this context's core, for a hop opened
// through it.
func (c *Context) spawn(ctx context.Context, req sdk.SpawnRequest) (*remoteProc, error) {
	io, err := c.conn.newChannel()
	if err != nil {
		return nil, c.lost(err)
	}
	errch, err := c.conn.newChannel()
	if err != nil {
		return nil, c.lost(err)
	}
	p := &remoteProc{ctx: c, io: io, errch: errch, done: make(chan struct{}), status: -1}
	r := map[string]any{"op": "spawn", "argv": req.Argv, "env": envMap(req.Env), "dir": req.Dir,
		"ch": io.id, "errch": errch.id}
	if req.TTY {
		p.ttych, err = c.conn.newChannel()
		if err != nil {
			return nil, c.lost(err)
		}
		r["tty"] = true
		r["ttych"] = p.ttych.id
	}
	id, cl, err := c.conn.start(r, true)
	if err != nil {
		return nil, c.lost(err)
	}
	p.rid = id
	if err := c.conn.wait(ctx, id, cl, nil); err != nil {
		c.conn.forget(id)
		p.Close()
		return nil, c.lost(err)
	}
	go func() {
		defer c.conn.forget(id)
		select {
		case f := <-cl.events:
			var ev struct {
				Exit int `json:"exit"`
			}
			if json.Unmarshal(f.Payload, &ev) == nil {
				p.status = ev.Exit
			}
		case <-c.conn.done:
		}
		close(p.done)
	}()
	return p, nil
}

// dial opens a TCP stream from this context's host.
func (c *Context) dial(ctx context.Context, network, address string) (*Channel, error) {
	if network != "tcp" && network != "tcp4" && network != "tcp6" {
		return nil, fmt.Errorf("dial through a context: network %q not supported", network)
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	pn, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("bad port in %q", address)
	}
	ch, err := c.conn.newChannel()
	if err != nil {
		return nil, c.lost(err)
	}
	timeout := 30.0
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl).Seconds()
	}
	if err := c.conn.call(ctx, map[string]any{"op": "dial", "host": host, "port": pn, "ch": ch.id, "timeout": timeout}, nil); err != nil {
		ch.Close()
		return nil, c.lost(err)
	}
	return ch, nil
}

// lost turns a dead connection's error into a parent-lost error for hops
// opened through this context.
func (c *Context) lost(err error) error {
	if c.conn.Err() == nil {
		return err
	}
	var se *sdk.Error
	if errors.As(err, &se) && se.Kind == sdk.KindParentLost {
		return err
	}
	return &sdk.Error{Kind: sdk.KindParentLost, Msg: fmt.Sprintf("connection to %s lost", c.name), Err: err}
}

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		for i := 0; i < len(kv); i++ {
			if kv[i] == '=' {
				m[kv[:i]] = kv[i+1:]
				break
			}
		}
	}
	return m
}
