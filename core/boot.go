package core

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/sporehq/spore/core/remote"
	"github.com/sporehq/spore/sdk"
)

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	t.mu.Unlock()
	return len(p), nil
}

func (t *tail) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.b...)
}

// setupClock is a hop's setup deadline, paused while a person is being
// asked for a secret.
type setupClock struct {
	mu       sync.Mutex
	deadline time.Time
	pausedAt time.Time
	pauses   int
	changed  chan struct{}
}

func newSetupClock(timeout time.Duration) *setupClock {
	return &setupClock{deadline: time.Now().Add(timeout), changed: make(chan struct{}, 1)}
}

// pause stops the clock until the returned func is called.
func (c *setupClock) pause() func() {
	c.mu.Lock()
	if c.pauses == 0 {
		c.pausedAt = time.Now()
	}
	c.pauses++
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			c.pauses--
			if c.pauses == 0 {
				c.deadline = c.deadline.Add(time.Since(c.pausedAt))
			}
			c.mu.Unlock()
			select {
			case c.changed <- struct{}{}:
			default:
			}
		})
	}
}

// expired returns a channel closed when the deadline passes (pauses
// respected), or when stop is closed.
func (c *setupClock) expired(stop <-chan struct{}) <-chan struct{} {
	out := make(chan struct{})
	go func() {
		for {
			c.mu.Lock()
			paused := c.pauses > 0
			left := time.Until(c.deadline)
			c.mu.Unlock()
			if !paused && left <= 0 {
				close(out)
				return
			}
			if paused {
				left = time.Hour
			}
			t := time.NewTimer(left)
			select {
			case <-t.C:
			case <-c.changed:
				t.Stop()
			case <-stop:
				t.Stop()
				return
			}
		}
	}()
	return out
}

// bootOutcome is what the marker reader saw.
type bootOutcome struct {
	marker1 bool
	marker2 bool
	out     []byte // what arrived before the markers (capped)
	rest    []byte // what arrived after marker 2
	err     error  // read error (io.EOF: the stream ended)
}

const maxPreMarker = 64 << 10

// readMarkers reads p until the second marker, reporting the first on m1.
func readMarkers(p io.Reader, m1 chan<- struct{}) bootOutcome {
	var o bootOutcome
	var buf []byte
	chunk := make([]byte, 32<<10)
	for {
		n, err := p.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if !o.marker1 {
			if i := bytes.Index(buf, remote.Marker1); i >= 0 {
				o.marker1 = true
				o.out = append(o.out, buf[:i]...)
				buf = buf[i+len(remote.Marker1):]
				close(m1)
			}
		}
		if o.marker1 {
			if i := bytes.Index(buf, remote.Marker2); i >= 0 {
				o.marker2 = true
				o.out = append(o.out, buf[:i]...)
				o.rest = buf[i+len(remote.Marker2):]
				return o
			}
		}
		// Keep only what could still start a marker.
		keep := len(remote.Marker1)
		if len(buf) > keep {
			o.out = append(o.out, buf[:len(buf)-keep]...)
			buf = buf[len(buf)-keep:]
			if len(o.out) > maxPreMarker {
				o.out = o.out[len(o.out)-maxPreMarker:]
			}
		}
		if err != nil {
			o.out = append(o.out, buf...)
			o.err = err
			return o
		}
	}
}

// testSendPreamble, when set by a test, replaces the writing of the
// preamble (to send garbage, half of it, or nothing).
var testSendPreamble func(p proc, preamble []byte) error

// bootSpec is one attempt to boot a core on a process.
type bootSpec struct {
	name     string
	python   string
	proc     proc
	preamble []byte
	clock    *setupClock
	setupErr <-chan error
	stderr   *tail
	tty      *tail
	mark     func(string)
}

// handshake drives the first stage: waits for marker 1, sends the
// preamble, waits for marker 2. On success it returns the bytes read past
// marker 2; on failure a BootFailure and the host's own view of the error.
func handshake(ctx context.Context, s bootSpec) ([]byte, *sdk.BootFailure, error) {
	m1 := make(chan struct{})
	res := make(chan bootOutcome, 1)
	go func() { res <- readMarkers(s.proc, m1) }()
	stop := make(chan struct{})
	defer close(stop)
	expired := s.clock.expired(stop)
	writeErr := make(chan error, 1)
	m1c := (<-chan struct{})(m1)
	var failErr error
	var out bootOutcome
	got := false
loop:
	for {
		select {
		case <-m1c:
			m1c = nil
			s.mark("preamble")
			send := testSendPreamble // read once, on the caller's goroutine
			go func() {
				if send != nil {
					writeErr <- send(s.proc, s.preamble)
					return
				}
				_, err := s.proc.Write(s.preamble)
				writeErr <- err
			}()
		case o := <-res:
			out, got = o, true
			if o.marker2 {
				s.mark("hello")
				return o.rest, nil, nil
			}
			break loop
		case err := <-s.setupErr:
			if err != nil {
				failErr = err
				break loop
			}
		case <-expired:
			failErr = &sdk.Error{Kind: sdk.KindDeadline, Msg: "setup deadline passed (raise it with ?timeout=)"}
			break loop
		case <-ctx.Done():
			failErr = ctx.Err()
			break loop
		}
	}
	// Failed: end the process, then gather what it left behind.
	s.proc.Kill()
	if !got {
		select {
		case out = <-res:
		case <-time.After(2 * time.Second):
		}
	}
	f := &sdk.BootFailure{Output: out.out, ExitStatus: -1, Python: s.python}
	if done := s.proc.Done(); done != nil {
		select {
		case <-done:
			f.Exited = true
			f.ExitStatus = s.proc.ExitStatus()
		case <-time.After(time.Second):
		}
	}
	time.Sleep(20 * time.Millisecond) // let the stderr copier catch up
	f.Stderr = s.stderr.Bytes()
	if s.tty != nil {
		f.TTY = s.tty.Bytes()
	}
	if failErr == nil {
		failErr = genericFailure(f, out)
	}
	return nil, f, failErr
}

// genericFailure classifies a failed boot that no transport claimed.
func genericFailure(f *sdk.BootFailure, o bootOutcome) error {
	stderr := capString(f.Stderr, 2048)
	text := string(f.Output) + "\n" + string(f.Stderr)
	switch {
	case !o.marker1 && (f.ExitStatus == 127 || f.ExitStatus == 126 || notFound(text, f.Python)):
		e := &sdk.Error{Kind: sdk.KindNoPython, Msg: fmt.Sprintf("no Python interpreter %q on the target (set ?python=PATH)", f.Python), Stderr: stderr}
		return e.WithDetail("python", f.Python)
	case o.marker1 && strings.Contains(string(f.Stderr), "spore: bad preamble"):
		return &sdk.Error{Kind: sdk.KindCorruptPreamble, Msg: "the target could not read the preamble (corrupt or cut short)", Stderr: stderr}
	case o.marker1:
		return &sdk.Error{Kind: sdk.KindCorruptPreamble, Msg: fmt.Sprintf("the interpreter exited while loading the core%s", statusText(f)), Stderr: stderr}
	default:
		return &sdk.Error{Kind: sdk.KindTransportExited, Msg: fmt.Sprintf("the transport exited before the boot started%s", statusText(f)), Stderr: stderr}
	}
}

func statusText(f *sdk.BootFailure) string {
	if f.Exited {
		return fmt.Sprintf(" (exit status %d)", f.ExitStatus)
	}
	return ""
}

func notFound(text, python string) bool {
	for _, s := range []string{"not found", "No such file or directory", "command not found", "executable file not found"} {
		if strings.Contains(text, s) && strings.Contains(text, lastElem(python)) {
			return true
		}
	}
	return false
}

func lastElem(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

func capString(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(bytes.ToValidUTF8(b, []byte("?"))))
}
