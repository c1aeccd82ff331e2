package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sporehq/spore/core"
	"github.com/sporehq/spore/internal/testenv"
	"github.com/sporehq/spore/sdk"
)

func TestBootCommandIsStatic(t *testing.T) {
	a := spore(t, "boot-command", "local://")
	b := spore(t, "boot-command", "local://")
	if a.code != 0 || a.stdout != b.stdout || a.stdout == "" {
		t.Fatalf("two runs differ or failed:\n%q\n%q\n%s", a.stdout, b.stdout, a.stderr)
	}
	if n := len(strings.TrimRight(a.stdout, "\n")); n > 600 {
		t.Errorf("shell-quoted boot command is %d bytes, over 600", n)
	}
	j := spore(t, "boot-command", "--json", "ssh://web1,sudo://root?python=/usr/bin/python3")
	var argv []string
	if err := json.Unmarshal([]byte(j.stdout), &argv); err != nil {
		t.Fatalf("--json: %v: %q", err, j.stdout)
	}
	if len(argv) != 6 || argv[0] != "/usr/bin/python3" || argv[1] != "-Sc" || argv[4] != "web1,sudo:root" {
		t.Fatalf("argv = %q", argv)
	}
	// The first stage (argv[3]) does not depend on the target.
	var other []string
	_ = json.Unmarshal([]byte(spore(t, "boot-command", "--json", "local://").stdout), &other)
	if other[3] != argv[3] || other[2] != argv[2] {
		t.Errorf("the loader or first stage varies with the target")
	}
}

func TestPluginsListed(t *testing.T) {
	r := spore(t, "plugins")
	if r.code != 0 || !strings.Contains(r.stdout, "local") || !strings.Contains(r.stdout, filepath.Join(binDir, "spore-transport-local")) {
		t.Fatalf("plugins: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// Every interpreter boots through the real local plugin and serves ping,
// exec and Python.
func TestCompatibilityEveryInterpreter(t *testing.T) {
	for _, py := range testenv.Pythons(t) {
		py := py
		t.Run(py.Name, func(t *testing.T) {
			h := newHost(t)
			ctx := testCtx(t, time.Minute)
			c, err := h.Connect(ctx, "local://?python="+py.Path)
			if err != nil {
				t.Fatal(err)
			}
			f := c.Facts()
			if f.PID == 0 || f.Hostname == "" || f.Python == "" {
				t.Errorf("facts incomplete: %+v", f)
			}
			if py.Name[0] >= '0' && py.Name[0] <= '9' && !strings.HasPrefix(py.Name, f.Python) {
				t.Errorf("python %s reports version %s", py.Name, f.Python)
			}
			if _, err := c.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			st, err := c.Run(ctx, &core.Cmd{Shell: "echo out; echo err >&2; exit 5", Stdout: &out, Stderr: &errb})
			if err != nil || st != 5 || out.String() != "out\n" || errb.String() != "err\n" {
				t.Fatalf("run: st=%d err=%v out=%q stderr=%q", st, err, out.String(), errb.String())
			}
			r, err := c.Python(ctx, "sum(args) * 2", []int{1, 2, 3})
			if err != nil {
				t.Fatalf("python: %v", err)
			}
			if string(r.Result) != "12" {
				t.Fatalf("python: result %s, want 12", r.Result)
			}
			_, err = c.Python(ctx, "import nosuchmodule_xyz", nil)
			var se *sdk.Error
			if !asErr(err, &se) || se.Kind != sdk.KindRemote || !strings.Contains(se.Detail["traceback"], "nosuchmodule_xyz") {
				t.Fatalf("remote exception not reported with its traceback: %v", err)
			}
			// The process name shows the context.
			cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(f.PID) + "/cmdline")
			if !strings.Contains(string(cmdline), "(spore:local)") {
				t.Errorf("argv[0] of the core = %q", cmdline)
			}
		})
	}
}

func asErr(err error, se **sdk.Error) bool {
	e, ok := err.(*sdk.Error)
	*se = e
	return ok
}

func TestExecStatusAndStreams(t *testing.T) {
	py := testenv.SystemPython(t)
	cases := []struct {
		args     []string
		code     int
		stdout   string
		stderrIn string
	}{
		{[]string{"--", "true"}, 0, "", ""},
		{[]string{"--shell", "exit 3"}, 3, "", ""},
		{[]string{"--shell", "kill -TERM $$"}, 128 + 15, "", ""},
		{[]string{"--shell", "kill -KILL $$"}, 128 + 9, "", ""},
		{[]string{"--", "sh", "-c", "echo to-out; echo to-err >&2"}, 0, "to-out\n", "to-err"},
		{[]string{"--", "printf", "%s|", "a b", "$HOME", "'q'"}, 0, "a b|$HOME|'q'|", ""},
		{[]string{"-e", "FOO=bar baz", "-C", "/tmp", "--shell", `echo "$FOO" $(pwd)`}, 0, "bar baz /tmp\n", ""},
		{[]string{"--", "no-such-command-xyz"}, 127, "", "command not found"},
	}
	for _, c := range cases {
		r := spore(t, append([]string{"run", "local://?python=" + py}, c.args...)...)
		if r.code != c.code || r.stdout != c.stdout || !strings.Contains(r.stderr, c.stderrIn) {
			t.Errorf("run %q: code %d stdout %q stderr %q; want %d %q %q", c.args, r.code, r.stdout, r.stderr, c.code, c.stdout, c.stderrIn)
		}
		if c.stderrIn == "" && r.stderr != "" {
			t.Errorf("run %q: unexpected stderr %q", c.args, r.stderr)
		}
	}
}

func TestStdinPassesThroughWithEOF(t *testing.T) {
	py := testenv.SystemPython(t)
	r := sporeIn(t, []byte("line one\nline two\n"), nil, "run", "local://?python="+py, "--", "sh", "-c", "wc -l; echo done")
	if r.code != 0 || r.stdout != "2\ndone\n" {
		t.Fatalf("code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	// -n: spore does not read stdin; the command sees EOF at once.
	r = sporeIn(t, []byte("ignored\n"), nil, "-n", "run", "local://?python="+py, "--", "wc", "-c")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "0" {
		t.Fatalf("-n: code %d stdout %q", r.code, r.stdout)
	}
}

func TestBinaryRoundTrip50MB(t *testing.T) {
	py := testenv.SystemPython(t)
	data := make([]byte, 50<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	h := newHost(t)
	ctx := testCtx(t, 2*time.Minute)
	c, err := h.Connect(ctx, "local://?python="+py)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.New()
	st, err := c.Run(ctx, &core.Cmd{Argv: []string{"cat"}, Stdin: bytes.NewReader(data), Stdout: sum})
	if err != nil || st != 0 {
		t.Fatalf("cat: %d %v", st, err)
	}
	want := sha256.Sum256(data)
	if !bytes.Equal(sum.Sum(nil), want[:]) {
		t.Fatal("sha256 differs after the round trip")
	}
}

func TestCancelKillsRemoteProcessGroup(t *testing.T) {
	py := testenv.SystemPython(t)
	h := newHost(t)
	ctx := testCtx(t, time.Minute)
	c, err := h.Connect(ctx, "local://?python="+py)
	if err != nil {
		t.Fatal(err)
	}
	marker := "313.25" + strconv.Itoa(os.Getpid()%1000)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		// A shell whose child is the sleep: the whole group must go.
		_, err := c.Run(rctx, &core.Cmd{Shell: "sleep " + marker + "; echo never"})
		done <- err
	}()
	waitFor(t, 5*time.Second, "the remote sleep to start", func() bool { return len(pidsWith("sleep "+marker)) > 0 })
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a cancelled command reported success")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	waitFor(t, 5*time.Second, "the remote sleep to die", func() bool { return len(pidsWith("sleep "+marker)) == 0 })
	// The context stays usable.
	if _, err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// A working directory full of modules named like the ones the loader and
// the core import must not run any of them, on any interpreter.
func TestCurrentDirectoryNotOnSysPath(t *testing.T) {
	dir := t.TempDir()
	hit := filepath.Join(dir, "HIT")
	for _, m := range []string{"zlib", "binascii", "select", "json", "struct", "fcntl", "errno", "signal", "socket", "traceback"} {
		src := "open(" + strconv.Quote(hit) + ", 'a').write('" + m + "\\n')\n"
		if err := os.WriteFile(filepath.Join(dir, m+".py"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, py := range testenv.Pythons(t) {
		t.Run(py.Name, func(t *testing.T) {
			cmd := exec.Command(filepath.Join(binDir, "spore"), "run", "local://?python="+py.Path, "--", "true")
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("boot from a poisoned directory failed: %v\n%s", err, out)
			}
			if b, err := os.ReadFile(hit); err == nil {
				t.Fatalf("modules from the working directory ran: %s", b)
			}
		})
	}
}

func TestFailedBootExits255WithOneLine(t *testing.T) {
	for _, target := range []string{
		"local://?python=/nonexistent/python3",
		"local://?bogus=1",
		"nosuchscheme://x",
		"local://?python=/bin/false",
	} {
		r := spore(t, "run", target, "--", "true")
		if r.code != 255 {
			t.Errorf("%s: exit %d, want 255", target, r.code)
		}
		if !oneLine(r.stderr) || strings.Contains(r.stderr, "Traceback") || strings.Contains(r.stderr, "panic") {
			t.Errorf("%s: stderr is not one actionable line: %q", target, r.stderr)
		}
	}
}

func TestNoOrphansAfterSIGKILL(t *testing.T) {
	py := testenv.SystemPython(t)
	marker := "300.7" + strconv.Itoa(os.Getpid()%1000)
	cmd := exec.Command(filepath.Join(binDir, "spore"), "run", "local://?python="+py, "--", "sleep", marker)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitFor(t, 10*time.Second, "the remote sleep to start", func() bool { return len(pidsWith("sleep\x00"+marker)) > 0 })
	// The processes spore started: its plugin and the core.
	kids := childrenOf(cmd.Process.Pid)
	if len(kids) < 2 {
		t.Fatalf("spore has %d children, want the plugin and the core", len(kids))
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	waitFor(t, 5*time.Second, "every process spore started to exit", func() bool {
		for _, p := range kids {
			if alive(p) {
				return false
			}
		}
		return len(pidsWith("sleep\x00"+marker)) == 0
	})
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !ok() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pidsWith lists live processes whose NUL-separated cmdline starts with s
// (spaces stand for NULs when s has no NUL).
func pidsWith(s string) []int {
	if !strings.Contains(s, "\x00") {
		s = strings.ReplaceAll(s, " ", "\x00")
	}
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && bytes.HasPrefix(b, []byte(s)) && alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

func childrenOf(parent int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && ppid(pid) == parent {
			out = append(out, pid)
		}
	}
	return out
}

// statFields returns the fields of /proc/PID/stat after the command name
// (state, ppid, ...), or nil.
func statFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
}

// ppid returns pid's parent, or -1.
func ppid(pid int) int {
	f := statFields(pid)
	if len(f) < 2 {
		return -1
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	f := statFields(pid)
	return len(f) > 0 && f[0] != "Z"
}

// A plugin that is not a plugin (prints garbage, or never answers) is
// reported in one line, within the start timeout, and leaves nothing
// running.
func TestBrokenPluginReported(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, "spore-transport-"+name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("garbage", "echo this is not a handshake; exit 3")
	write("silent", "sleep 300.9")
	for _, c := range []struct {
		scheme string
		limit  time.Duration
	}{{"garbage", 5 * time.Second}, {"silent", 20 * time.Second}} {
		r := sporeIn(t, nil, []string{"SPORE_PLUGIN_PATH=" + dir}, "run", c.scheme+"://x", "--", "true")
		if r.code != 255 || !oneLine(r.stderr) || !strings.Contains(r.stderr, "transport plugin "+c.scheme) {
			t.Errorf("%s: exit %d, stderr %q; want 255 and one line naming the plugin", c.scheme, r.code, r.stderr)
		}
		if r.took > c.limit {
			t.Errorf("%s: took %v, over %v", c.scheme, r.took, c.limit)
		}
	}
	waitFor(t, 5*time.Second, "the silent plugin's children to be gone", func() bool { return len(pidsWith("sleep 300.9")) == 0 })
}
