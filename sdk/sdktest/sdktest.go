package sdktest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/hashicorp/go-hclog"

	"github.com/sporehq/spore/sdk"
)

// Config says where the suite opens hops.
type Config struct {
	// Hop is the hop to open; its Scheme must be the transport's name.
	Hop sdk.Hop
	// Python is an interpreter on the target (default "python3").
	Python string
	// Parent is where hops start (default: a LocalParent).
	Parent sdk.Parent
	// Prompter answers the transport's questions (default: Answers{}).
	Prompter sdk.Prompter
	// Timeout bounds each open (default 30 s).
	Timeout time.Duration
}

// hostOptions are the options the host owns; a transport must not declare
// them.
var hostOptions = []string{"python", "timeout", "password_env", "password_file"}

// echoProgram copies stdin to stdout, binary-clean, then exits 0.
const echoProgram = `import os
while True:
    d = os.read(0, 65536)
    if not d:
        break
    while d:
        d = d[os.write(1, d):]
`

// Run runs the suite against tr.
func Run(t *testing.T, tr sdk.Transport, cfg Config) {
	t.Helper()
	if cfg.Python == "" {
		cfg.Python = "python3"
	}
	if cfg.Parent == nil {
		lp := NewLocalParent()
		t.Cleanup(lp.Close)
		cfg.Parent = lp
	}
	if cfg.Prompter == nil {
		cfg.Prompter = Answers{}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	info := tr.Info()
	t.Run("Info", func(t *testing.T) { checkInfo(t, info, cfg) })
	t.Run("EchoBinary", func(t *testing.T) { checkEcho(t, tr, cfg, 1<<20) })
	t.Run("CloseEndsRemote", func(t *testing.T) { checkClose(t, tr, cfg) })
	t.Run("Concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); checkEcho(t, tr, cfg, 64<<10) }()
		}
		wg.Wait()
	})
	t.Run("NoSuchInterpreter", func(t *testing.T) { checkNoPython(t, tr, cfg) })
	t.Run("CancelledContext", func(t *testing.T) { checkCancelled(t, tr, cfg) })
}

func checkInfo(t *testing.T, info sdk.Info, cfg Config) {
	if info.Name == "" || info.Name != cfg.Hop.Scheme {
		t.Errorf("Info().Name = %q, want the scheme %q", info.Name, cfg.Hop.Scheme)
	}
	if info.Protocol != sdk.ProtocolVersion {
		t.Errorf("Info().Protocol = %d, want %d", info.Protocol, sdk.ProtocolVersion)
	}
	seen := map[string]bool{}
	for _, o := range info.Options {
		if o.Name == "" || o.Help == "" {
			t.Errorf("option %+v needs a name and a help line", o)
		}
		if seen[o.Name] {
			t.Errorf("option %s declared twice", o.Name)
		}
		seen[o.Name] = true
		for _, h := range hostOptions {
			if o.Name == h {
				t.Errorf("option %s belongs to the host; do not declare it", h)
			}
		}
	}
	for k := range cfg.Hop.Options {
		if !seen[k] {
			t.Errorf("Config.Hop uses option %s, which Info does not declare", k)
		}
	}
}

// open opens a hop running argv and returns its stream as a
// ReadWriteCloser with CloseWrite.
func open(ctx context.Context, tr sdk.Transport, cfg Config, argv []string) (*stream, error) {
	lg := hclog.NewNullLogger()
	req := &sdk.OpenRequest{
		Name: "sdktest", Hop: cfg.Hop, Argv: argv, Parent: cfg.Parent, Prompter: cfg.Prompter,
		Log: lg, Phase: func(string) {}, Timeout: cfg.Timeout,
	}
	setupCtx, cancel := context.WithCancel(ctx)
	st, err := tr.Open(setupCtx, req)
	if err != nil {
		cancel()
		return nil, err
	}
	if st == nil || (st.Process == nil) == (st.Conn == nil) {
		cancel()
		return nil, errors.New("the Stream from Open holds not exactly one of Process and Conn")
	}
	s := &stream{st: st, cancel: cancel, setupErr: make(chan error, 1)}
	if st.Process != nil {
		lp, ok := cfg.Parent.(*LocalParent)
		if !ok {
			cancel()
			return nil, errors.New("a Process stream needs the suite's LocalParent")
		}
		p := lp.proc(st.Process.ID)
		if p == nil {
			cancel()
			return nil, fmt.Errorf("process %q from Open was never made by Parent.Spawn", st.Process.ID)
		}
		s.rw, s.stderr = p, p.stderr
	} else {
		s.rw, s.stderr = st.Conn, st.Stderr
	}
	if st.Setup != nil {
		go func() { s.setupErr <- st.Setup(setupCtx) }()
	}
	return s, nil
}

type stream struct {
	st       *sdk.Stream
	rw       io.ReadWriteCloser
	stderr   io.Reader
	cancel   context.CancelFunc
	setupErr chan error
}

func (s *stream) closeWrite() error {
	if cw, ok := s.rw.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("the stream has no CloseWrite: EOF cannot reach the target")
}

func (s *stream) close() {
	s.cancel()
	s.rw.Close()
	if s.st.Close != nil {
		_ = s.st.Close()
	}
}

func checkEcho(t *testing.T, tr sdk.Transport, cfg Config, size int) {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout+30*time.Second)
	defer cancel()
	s, err := open(ctx, tr, cfg, []string{cfg.Python, "-c", echoProgram})
	if err != nil {
		t.Errorf("Open: %v", err)
		return
	}
	defer s.close()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	go func() {
		_, _ = s.rw.Write(data)
		if err := s.closeWrite(); err != nil {
			t.Errorf("%v", err)
		}
	}()
	got := sha256.New()
	n, err := io.Copy(got, s.rw)
	if err != nil {
		t.Errorf("reading the echo: %v", err)
	}
	want := sha256.Sum256(data)
	if n != int64(size) || !bytes.Equal(got.Sum(nil), want[:]) {
		var errb []byte
		if s.stderr != nil {
			errb, _ = io.ReadAll(io.LimitReader(s.stderr, 4096))
		}
		t.Errorf("echo returned %d bytes (want %d) or different bytes; stderr: %s", n, size, errb)
	}
}

func checkClose(t *testing.T, tr sdk.Transport, cfg Config) {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout+30*time.Second)
	defer cancel()
	// The remote side announces itself, then waits for stdin to close.
	s, err := open(ctx, tr, cfg, []string{cfg.Python, "-c", "import os,sys\nos.write(1, b'up\\n')\nsys.stdin.read()\nos.write(1, b'bye\\n')"})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	buf := make([]byte, 3)
	if _, err := io.ReadFull(s.rw, buf); err != nil || string(buf) != "up\n" {
		t.Fatalf("remote did not start: %q %v", buf, err)
	}
	if err := s.closeWrite(); err != nil {
		t.Fatal(err)
	}
	done := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(s.rw); done <- b }()
	select {
	case b := <-done:
		if string(b) != "bye\n" {
			t.Errorf("after EOF the remote wrote %q, want %q", b, "bye\n")
		}
	case <-time.After(10 * time.Second):
		t.Error("the remote side did not see EOF within 10 s")
	}
	s.close()
}

func checkNoPython(t *testing.T, tr sdk.Transport, cfg Config) {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout+30*time.Second)
	defer cancel()
	py := "/nonexistent/spore-sdktest/python9"
	s, err := open(ctx, tr, cfg, []string{py, "-c", "pass"})
	var f sdk.BootFailure
	f.Python = py
	f.ExitStatus = -1
	if err == nil {
		out, _ := io.ReadAll(io.LimitReader(s.rw, 64<<10))
		f.Output = out
		if s.stderr != nil {
			f.Stderr, _ = io.ReadAll(io.LimitReader(s.stderr, 64<<10))
		}
		s.close()
	} else if sdk.KindOf(err) == sdk.KindUnknown {
		t.Errorf("Open failed with an unclassified error: %v", err)
		return
	}
	c, ok := tr.(sdk.Classifier)
	if !ok || err != nil {
		return
	}
	cerr := c.Classify(f)
	if cerr != nil && sdk.KindOf(cerr) != sdk.KindNoPython {
		t.Errorf("Classify of a missing interpreter = %v (kind %s), want nil or no-python", cerr, sdk.KindOf(cerr))
	}
}

func checkCancelled(t *testing.T, tr sdk.Transport, cfg Config) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() {
		s, err := open(ctx, tr, cfg, []string{cfg.Python, "-c", "pass"})
		if s != nil {
			s.close()
		}
		done <- err
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Error("Open with a cancelled context did not return within 10 s")
	}
}

// Answers is a Prompter that answers from a map keyed by Prompt.Key and
// fails for anything else. It never answers a Retry.
type Answers map[string]string

// Prompt implements sdk.Prompter.
func (a Answers) Prompt(_ context.Context, p sdk.Prompt) (string, error) {
	if v, ok := a[p.Key]; ok && !p.Retry {
		return v, nil
	}
	if p.Retry {
		return "", sdk.Errorf(sdk.KindIncorrectPassword, "the %s was refused", p.Key)
	}
	return "", sdk.Errorf(sdk.KindPromptUnavailable, "sdktest has no answer for %q", p.Key)
}

// LocalParent is an sdk.Parent on this machine, as the host's own is: it
// keeps the bytes of what it spawns and gives the transport an opaque id.
type LocalParent struct {
	mu    sync.Mutex
	procs map[string]*localProc
	n     int
}

// NewLocalParent returns an empty LocalParent.
func NewLocalParent() *LocalParent { return &LocalParent{procs: map[string]*localProc{}} }

// Local reports true.
func (*LocalParent) Local() bool { return true }

// Dial dials from this machine.
func (*LocalParent) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, &sdk.Error{Kind: sdk.KindConnect, Msg: err.Error(), Err: err}
	}
	return c, nil
}

// Spawn starts req on this machine: pipes for stdin and stdout (and
// stderr), and with TTY a new session whose controlling terminal is a pty.
func (lp *LocalParent) Spawn(ctx context.Context, req sdk.SpawnRequest) (*sdk.Process, error) {
	if len(req.Argv) == 0 {
		return nil, errors.New("empty argv")
	}
	cmd := exec.Command(req.Argv[0], req.Argv[1:]...)
	cmd.Env = append(os.Environ(), req.Env...)
	cmd.Dir = req.Dir
	// Own pipes, not cmd.StdoutPipe: Wait would close those under a reader.
	inR, stdin, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	stdout, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	stderr, errW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	defer inR.Close()
	defer outW.Close()
	defer errW.Close()
	var tty *os.File
	if req.TTY {
		var slave *os.File
		tty, slave, err = pty.Open()
		if err != nil {
			return nil, err
		}
		defer slave.Close()
		cmd.ExtraFiles = []*os.File{slave}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 3}
	}
	if err := cmd.Start(); err != nil {
		if tty != nil {
			tty.Close()
		}
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return nil, &sdk.Error{Kind: sdk.KindNotFound, Msg: req.Argv[0] + ": command not found", Err: err}
		}
		return nil, err
	}
	p := &localProc{cmd: cmd, stdin: stdin, stdout: stdout, stderr: stderr}
	go func() { _ = cmd.Wait() }()
	lp.mu.Lock()
	lp.n++
	id := fmt.Sprintf("sdktest-%d", lp.n)
	lp.procs[id] = p
	lp.mu.Unlock()
	sp := &sdk.Process{ID: id}
	if tty != nil {
		sp.TTY = tty
	}
	return sp, nil
}

func (lp *LocalParent) proc(id string) *localProc {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return lp.procs[id]
}

// Close kills everything the parent spawned.
func (lp *LocalParent) Close() {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	for _, p := range lp.procs {
		_ = p.cmd.Process.Kill()
	}
}

type localProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout io.Reader
	stderr io.Reader
}

func (p *localProc) Read(b []byte) (int, error)  { return p.stdout.Read(b) }
func (p *localProc) Write(b []byte) (int, error) { return p.stdin.Write(b) }
func (p *localProc) CloseWrite() error           { return p.stdin.Close() }
func (p *localProc) Close() error {
	p.stdin.Close()
	return nil
}
