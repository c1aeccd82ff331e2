package core

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sporehq/spore/core/remote"
	"github.com/sporehq/spore/internal/testenv"
	"github.com/sporehq/spore/sdk"
)

// firstStage runs the boot command of py directly with stdin, returning
// stdout, stderr, how long it took and its CPU time.
func firstStage(t *testing.T, py string, stdin []byte, useZero bool) (string, string, time.Duration, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	argv := remote.BootArgv(py, "test")
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if useZero {
		f, err := os.Open("/dev/zero")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd.Stdin = f
	} else {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	t0 := time.Now()
	_ = cmd.Run()
	took := time.Since(t0)
	if ctx.Err() != nil {
		t.Fatalf("%s: first stage still running after 20 s", py)
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return out.String(), errb.String(), took, cpu
}

func TestFirstStageDevZero(t *testing.T) {
	for _, py := range testenv.Pythons(t) {
		t.Run(py.Name, func(t *testing.T) {
			out, stderr, took, cpu := firstStage(t, py.Path, nil, true)
			if !strings.HasPrefix(out, string(remote.Marker1)) || strings.Contains(out, string(remote.Marker2)) {
				t.Errorf("stdout = %q, want marker 1 only", out)
			}
			if took > 2*time.Second {
				t.Errorf("took %v, want under 2 s", took)
			}
			if cpu > time.Second {
				t.Errorf("used %v of CPU: a busy loop?", cpu)
			}
			if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) > 1 || !strings.Contains(stderr, "spore: bad preamble") {
				t.Errorf("stderr = %q, want one 'spore: bad preamble' line", stderr)
			}
		})
	}
}

func TestFirstStageTruncatedPreamble(t *testing.T) {
	pre := remote.Preamble()
	for _, py := range testenv.Pythons(t) {
		t.Run(py.Name, func(t *testing.T) {
			out, stderr, took, _ := firstStage(t, py.Path, pre[:len(pre)/2], false)
			if !strings.HasPrefix(out, string(remote.Marker1)) || strings.Contains(out, string(remote.Marker2)) {
				t.Errorf("stdout = %q, want marker 1 only", out)
			}
			if took > 5*time.Second {
				t.Errorf("took %v", took)
			}
			if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) > 1 || !strings.Contains(stderr, "spore: bad preamble") {
				t.Errorf("stderr = %q, want one 'spore: bad preamble' line", stderr)
			}
		})
	}
}

func withPreambleSender(t *testing.T, f func(p proc, pre []byte) error) {
	testSendPreamble = f
	t.Cleanup(func() { testSendPreamble = nil })
}

func TestHostReportsCorruptPreamble(t *testing.T) {
	py := testenv.SystemPython(t)
	cases := map[string]func(p proc, pre []byte) error{
		"zeros": func(p proc, pre []byte) error { _, err := p.Write(make([]byte, len(pre))); return err },
		"cut short": func(p proc, pre []byte) error {
			if _, err := p.Write(pre[:len(pre)/3]); err != nil {
				return err
			}
			return p.CloseWrite()
		},
	}
	for name, send := range cases {
		t.Run(name, func(t *testing.T) {
			withPreambleSender(t, send)
			h := newTestHost(t)
			t0 := time.Now()
			_, err := h.Connect(testCtx(t), "local://?timeout=20&python="+py)
			if sdk.KindOf(err) != sdk.KindCorruptPreamble {
				t.Fatalf("err = %v (kind %s), want corrupt-preamble", err, sdk.KindOf(err))
			}
			if time.Since(t0) > 5*time.Second {
				t.Errorf("took %v", time.Since(t0))
			}
			if strings.Contains(err.Error(), "Traceback") || strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one clean line: %q", err)
			}
		})
	}
}

func TestHostDeadlineWhenPreambleNeverSent(t *testing.T) {
	py := testenv.SystemPython(t)
	var childPID atomic.Int64
	withPreambleSender(t, func(p proc, pre []byte) error {
		if lp, ok := p.(*localProc); ok {
			childPID.Store(int64(lp.cmd.Process.Pid))
		}
		return nil
	})
	h := newTestHost(t)
	t0 := time.Now()
	_, err := h.Connect(testCtx(t), "local://?timeout=1s&python="+py)
	took := time.Since(t0)
	if sdk.KindOf(err) != sdk.KindDeadline {
		t.Fatalf("err = %v, want deadline", err)
	}
	if took < time.Second || took > 5*time.Second {
		t.Errorf("deadline of 1 s fired after %v", took)
	}
	child := int(childPID.Load())
	if child == 0 {
		t.Fatal("no child seen")
	}
	// The interpreter was killed and reaped: no such process, not even a zombie.
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, err := os.Stat("/proc/" + itoa(child))
		if os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			st, _ := os.ReadFile("/proc/" + itoa(child) + "/stat")
			t.Fatalf("child %d still exists: %s", child, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestNoSuchInterpreter(t *testing.T) {
	h := newTestHost(t)
	_, err := h.Connect(testCtx(t), "local://?python=/nonexistent/bin/python9")
	var se *sdk.Error
	if !asSdk(err, &se) || se.Kind != sdk.KindNoPython {
		t.Fatalf("err = %v, want no-python", err)
	}
	if !strings.Contains(se.Error(), "/nonexistent/bin/python9") || se.Detail["python"] != "/nonexistent/bin/python9" {
		t.Errorf("error does not name the path: %v %v", se, se.Detail)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
