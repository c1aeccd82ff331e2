package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sporehq/spore/core/remote"
	"github.com/sporehq/spore/sdk"
	"github.com/sporehq/spore/sdk/rpc"
)

// AskFunc asks a person for a value on a terminal. It returns an error
// when nobody can be asked.
type AskFunc func(ctx context.Context, p sdk.Prompt) (string, error)

// Options configure a Host.
type Options struct {
	// PluginDirs are searched for spore-transport-NAME binaries; nil means
	// PluginDirs().
	PluginDirs []string
	// Logger receives the host's and the plugins' logs; nil discards them.
	Logger hclog.Logger
	// Ask asks a person for a secret. nil (or Batch) makes every needed
	// prompt fail at once with KindPromptUnavailable.
	Ask AskFunc
	// Batch refuses all interactive prompts.
	Batch bool
	// LogLevel is passed to remote cores ("info", "debug").
	LogLevel string
}

// Host owns the plugins and every context opened through it. It is safe
// for concurrent use.
type Host struct {
	opts Options
	log  hclog.Logger

	mu       sync.Mutex
	plugins  map[string]*pluginClient
	hops     map[uint64]*hopState
	procs    map[string]proc
	contexts []*Context
	nextID   uint64
	closed   bool
	secret   map[string]bool // environment names holding secrets
}

// NewHost returns a Host. Plugins are started on first use.
func NewHost(opts Options) *Host {
	if opts.PluginDirs == nil {
		opts.PluginDirs = PluginDirs()
	}
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Host{opts: opts, log: log, plugins: map[string]*pluginClient{}, hops: map[uint64]*hopState{},
		procs: map[string]proc{}, secret: map[string]bool{}}
}

// Close closes every context and stops every plugin.
func (h *Host) Close() error {
	h.mu.Lock()
	h.closed = true
	ctxs := h.contexts
	h.contexts = nil
	plugins := h.plugins
	h.plugins = map[string]*pluginClient{}
	h.mu.Unlock()
	for i := len(ctxs) - 1; i >= 0; i-- {
		_ = ctxs[i].Close()
	}
	for _, p := range plugins {
		p.kill()
	}
	return nil
}

// env is the environment given to plugins and local processes: spore's
// own, less every variable a target names as holding a password.
func (h *Host) env() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !h.secret[k] {
			out = append(out, kv)
		}
	}
	return out
}

// Plugin returns the running plugin for scheme, starting it if needed.
func (h *Host) plugin(ctx context.Context, scheme string) (*pluginClient, error) {
	h.mu.Lock()
	if p := h.plugins[scheme]; p != nil {
		if !p.client.Exited() {
			h.mu.Unlock()
			return p, nil
		}
		// It died (or was killed): start a new one.
		delete(h.plugins, scheme)
		p.fds.Close()
	}
	h.mu.Unlock()
	var file *PluginFile
	for _, f := range DiscoverPlugins(h.opts.PluginDirs) {
		if f.Name == scheme {
			f := f
			file = &f
			break
		}
	}
	if file == nil {
		return nil, sdk.Errorf(sdk.KindNoPlugin, "no transport for %s:// (looked for %s%s in %s)", scheme, PluginPrefix, scheme, strings.Join(h.opts.PluginDirs, ", "))
	}
	p, err := launchPlugin(ctx, *file, h.env(), h.log, &hostService{h: h})
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if old := h.plugins[scheme]; old != nil {
		p.kill()
		return old, nil
	}
	h.plugins[scheme] = p
	return p, nil
}

// PluginInfo starts (if needed) the plugin for scheme and returns what it
// declares.
func (h *Host) PluginInfo(ctx context.Context, scheme string) (sdk.Info, PluginFile, error) {
	p, err := h.plugin(ctx, scheme)
	if err != nil {
		return sdk.Info{}, PluginFile{}, err
	}
	return p.info, p.file, nil
}

// Connect opens every hop of target in turn, each through the previous
// one, and returns the last hop's context. Options of every hop are checked
// before anything connects.
func (h *Host) Connect(ctx context.Context, target string) (*Context, error) {
	hops, err := ParseTarget(target)
	if err != nil {
		return nil, err
	}
	return h.ConnectHops(ctx, nil, hops)
}

// ConnectHops opens hops starting from parent (nil: this machine).
func (h *Host) ConnectHops(ctx context.Context, parent *Context, hops []Hop) (*Context, error) {
	h.mu.Lock()
	for _, hop := range hops {
		if hop.PasswordEnv != "" {
			h.secret[hop.PasswordEnv] = true
		}
	}
	h.mu.Unlock()
	// Start every scheme's plugin at once: each start is a process launch
	// and a handshake, and a chain needs them all before it connects.
	type started struct {
		p   *pluginClient
		err error
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	byScheme := map[string]started{}
	for _, hop := range hops {
		mu.Lock()
		_, dup := byScheme[hop.Scheme]
		byScheme[hop.Scheme] = started{}
		mu.Unlock()
		if dup {
			continue
		}
		wg.Add(1)
		go func(scheme string) {
			defer wg.Done()
			p, err := h.plugin(ctx, scheme)
			mu.Lock()
			byScheme[scheme] = started{p, err}
			mu.Unlock()
		}(hop.Scheme)
	}
	wg.Wait()
	plugins := make([]*pluginClient, len(hops))
	for i, hop := range hops {
		st := byScheme[hop.Scheme]
		if st.err != nil {
			return nil, st.err
		}
		if err := hop.checkOptions(st.p.info.Options); err != nil {
			return nil, err
		}
		plugins[i] = st.p
	}
	var opened []*Context
	for i, hop := range hops {
		c, err := h.open(ctx, parent, hop, plugins[i])
		if err != nil {
			for j := len(opened) - 1; j >= 0; j-- {
				_ = opened[j].Close()
			}
			return nil, err
		}
		opened = append(opened, c)
		parent = c
	}
	return parent, nil
}

// pythons lists the interpreters to try for hop, in order.
func pythons(hop Hop, parent *Context, sameHost bool) []string {
	if hop.Python != "auto" {
		return []string{hop.Python}
	}
	var out []string
	if sameHost && parent != nil && parent.facts.Executable != "" {
		out = append(out, parent.facts.Executable)
	}
	return append(out, "python3", "python", "python2", "platform-python")
}

func (h *Host) open(ctx context.Context, parent *Context, hop Hop, p *pluginClient) (*Context, error) {
	name := hop.shortName()
	if parent != nil {
		name = parent.name + "," + name
	}
	cands := pythons(hop, parent, p.info.SameHost)
	cache := &secretCache{}
	var err error
	for i, py := range cands {
		var c *Context
		if c, err = h.boot(ctx, parent, hop, p, py, name, cache); err == nil {
			return c, nil
		}
		if hop.Python != "auto" || sdk.KindOf(err) != sdk.KindNoPython {
			break
		}
		var se *sdk.Error
		if tried := cands[:i+1]; errors.As(err, &se) && len(tried) > 1 {
			se.Msg = fmt.Sprintf("no Python interpreter on the target (tried %s; set ?python=PATH)", strings.Join(tried, ", "))
			se.WithDetail("tried", strings.Join(tried, ","))
		}
		h.log.Debug("no interpreter", "hop", hop.Spec, "python", py)
	}
	return nil, h.hopError(hop, err)
}

func (h *Host) hopError(hop Hop, err error) error {
	var se *sdk.Error
	if errors.As(err, &se) {
		if se.Hop == "" {
			se.Hop = hop.Spec
		}
		return err
	}
	if errors.Is(err, context.Canceled) {
		return &sdk.Error{Kind: sdk.KindClosed, Hop: hop.Spec, Msg: "cancelled", Err: err}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &sdk.Error{Kind: sdk.KindDeadline, Hop: hop.Spec, Msg: "setup deadline passed", Err: err}
	}
	return &sdk.Error{Kind: sdk.KindUnknown, Hop: hop.Spec, Msg: err.Error(), Err: err}
}

// hopState is a hop while it boots: what the host service needs to answer
// the plugin's calls for it.
type hopState struct {
	id     uint64
	hop    Hop
	parent *Context
	clock  *setupClock
	cache  *secretCache
	tty    *tail

	mu      sync.Mutex
	marks   []Phase
	procs   []proc
	procIDs []string
}

func (s *hopState) mark(name string) {
	s.mu.Lock()
	s.marks = append(s.marks, Phase{Name: name, Start: time.Now()})
	s.mu.Unlock()
}

type secretCache struct {
	mu sync.Mutex
	m  map[string]string
}

func (h *Host) boot(ctx context.Context, parent *Context, hop Hop, p *pluginClient, python, name string, cache *secretCache) (*Context, error) {
	h.mu.Lock()
	h.nextID++
	hs := &hopState{id: h.nextID, hop: hop, parent: parent, clock: newSetupClock(hop.Timeout), cache: cache, tty: &tail{max: 4096}}
	h.hops[hs.id] = hs
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.hops, hs.id)
		// Process ids only serve the plugin's calls during setup.
		hs.mu.Lock()
		for _, id := range hs.procIDs {
			delete(h.procs, id)
		}
		hs.mu.Unlock()
		h.mu.Unlock()
	}()
	hs.mark("open")
	h.log.Debug("opening hop", "hop", hop.Spec, "context", name, "python", python, "timeout", hop.Timeout)
	argv := remote.BootArgv(python, name)
	octx, cancelOpen := context.WithCancel(ctx)
	stopClock := make(chan struct{})
	go func() {
		select {
		case <-hs.clock.expired(stopClock):
			cancelOpen()
		case <-stopClock:
		}
	}()
	up := false
	defer func() {
		close(stopClock)
		if !up {
			cancelOpen()
		}
	}()
	var parentID uint64
	if parent != nil {
		parentID = parent.id
	}
	hp := rpc.Hop{Scheme: hop.Scheme, User: hop.User, Host: hop.Host, Port: hop.Port, Options: hop.Options}
	recv, err := rpc.OpenStream(octx, p.conn, &rpc.OpenRequest{OpenID: hs.id, ParentID: parentID, Local: parent == nil,
		Name: name, Hop: hp, Argv: argv, TimeoutMS: hop.Timeout.Milliseconds()})
	if err != nil {
		return nil, h.openErr(hs, sdk.FromWire(err))
	}
	ev, err := recv()
	if err != nil {
		hs.killProcs()
		err = sdk.FromWire(err)
		if sdk.KindOf(err) == sdk.KindNotFound && strings.HasPrefix(err.(*sdk.Error).Msg, python+": ") {
			e := &sdk.Error{Kind: sdk.KindNoPython, Msg: fmt.Sprintf("no Python interpreter %q on the target (set ?python=PATH)", python)}
			return nil, e.WithDetail("python", python)
		}
		return nil, h.openErr(hs, err)
	}
	if ev.Err != nil {
		hs.killProcs()
		return nil, sdk.FromWire(ev.Err)
	}
	var pr proc
	switch {
	case ev.ProcessID != "":
		h.mu.Lock()
		pr = h.procs[ev.ProcessID]
		h.mu.Unlock()
		if pr == nil {
			return nil, sdk.Errorf(sdk.KindProtocol, "transport %s returned an unknown process", hop.Scheme)
		}
	case ev.ConnToken != 0:
		cp, err := h.receiveConn(octx, p, ev.ConnToken, ev.StderrToken)
		if err != nil {
			return nil, err
		}
		pr = cp
		hs.mu.Lock()
		hs.procs = append(hs.procs, cp)
		hs.mu.Unlock()
	default:
		return nil, sdk.Errorf(sdk.KindProtocol, "transport %s returned no stream", hop.Scheme)
	}
	setupErr := make(chan error, 1)
	go func() {
		for {
			ev, err := recv()
			if err != nil {
				return
			}
			if ev.Err != nil {
				setupErr <- sdk.FromWire(ev.Err)
				return
			}
		}
	}()
	stderr := &tail{max: 8192}
	if se := pr.Stderr(); se != nil {
		go h.copyStderr(name, se, stderr)
	}
	hs.mark("first marker")
	rest, failure, err := handshake(ctx, bootSpec{
		name: name, python: python, proc: pr, preamble: remote.Preamble(), clock: hs.clock,
		setupErr: setupErr, stderr: stderr, tty: hs.tty, mark: hs.mark,
	})
	if err != nil {
		release(p, hs.id)
		// The transport classifies only what the host could not: a typed
		// error from its own setup stands.
		generic := map[sdk.Kind]bool{sdk.KindNoPython: true, sdk.KindTransportExited: true, sdk.KindCorruptPreamble: true}
		if failure != nil && generic[sdk.KindOf(err)] {
			var resp rpc.ClassifyResponse
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			cerr := rpc.Invoke(cctx, p.conn, rpc.MethodClassify, &rpc.ClassifyRequest{Failure: rpc.BootFailure(*failure), Hop: hp}, &resp)
			cancel()
			if cerr == nil && resp.Err != nil {
				return nil, sdk.FromWire(resp.Err)
			}
		}
		return nil, err
	}
	c := newContext(h, name, hop, parent, pr, rest, p, hs.id)
	var facts Facts
	hctx, cancel := context.WithTimeout(ctx, hop.Timeout)
	err = c.conn.call(hctx, map[string]any{"op": "hello", "name": name, "id": hs.id, "log_level": h.opts.LogLevel}, &facts)
	cancel()
	if err != nil {
		c.Close()
		return nil, err
	}
	up = true
	cancelOpen() // the context is up: the plugin's setup ends
	hs.mark("up")
	h.log.Debug("context up", "context", name, "python", facts.Python, "pid", facts.PID)
	c.facts = facts
	hs.mu.Lock()
	c.phases = phasesFrom(hs.marks)
	hs.mu.Unlock()
	h.mu.Lock()
	h.contexts = append(h.contexts, c)
	h.mu.Unlock()
	if parent != nil {
		parent.addChild(c)
	}
	return c, nil
}

func (h *Host) openErr(hs *hopState, err error) error {
	var se *sdk.Error
	if !errors.As(err, &se) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		// Not the transport's own error: its plugin failed or died.
		return &sdk.Error{Kind: sdk.KindTransportExited, Msg: fmt.Sprintf("transport %s failed: %v", hs.hop.Scheme, err), Err: err}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		hs.clock.mu.Lock()
		passed := time.Now().After(hs.clock.deadline)
		hs.clock.mu.Unlock()
		if passed {
			return &sdk.Error{Kind: sdk.KindDeadline, Msg: fmt.Sprintf("setup deadline of %s passed (raise it with ?timeout=)", hs.hop.Timeout), Err: err}
		}
	}
	return err
}

func release(p *pluginClient, id uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = rpc.Invoke(ctx, p.conn, rpc.MethodRelease, &rpc.ReleaseRequest{OpenID: id}, &rpc.Empty{})
}

func (hs *hopState) killProcs() {
	hs.mu.Lock()
	ps := hs.procs
	hs.mu.Unlock()
	for _, p := range ps {
		p.Kill()
	}
}

func (h *Host) copyStderr(name string, r interface{ Read([]byte) (int, error) }, t *tail) {
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			_, _ = t.Write(buf[:n])
			for _, line := range strings.Split(strings.TrimRight(string(buf[:n]), "\n"), "\n") {
				h.log.Debug("remote stderr", "context", name, "line", line)
			}
		}
		if err != nil {
			return
		}
	}
}

func (h *Host) receiveConn(ctx context.Context, p *pluginClient, connTok, errTok uint64) (*connProc, error) {
	f, err := p.fds.Receive(ctx, connTok)
	if err != nil {
		return nil, fmt.Errorf("receiving the stream from plugin %s: %w", p.file.Name, err)
	}
	var stderr io.Reader
	if errTok != 0 {
		if ef, err := p.fds.Receive(ctx, errTok); err == nil {
			stderr = ef
		}
	}
	cp := newConnProc(f, stderr)
	return cp, nil
}
