package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/url"
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

// sshEnv is the test sshd with a known_hosts file for it and the
// interpreter to boot there.
type sshEnv struct {
	srv        *testenv.SSHServer
	knownHosts string
	py         string
}

func newSSHEnv(t *testing.T) *sshEnv {
	t.Helper()
	srv := testenv.SSHD(t)
	return &sshEnv{srv: srv, knownHosts: srv.WriteKnownHosts(t), py: testenv.SystemPython(t)}
}

// target is an ssh:// hop to the test sshd as u with u's key, the test
// known_hosts, no ssh_config and the system python3; opts (name, value
// pairs) add to or replace those options, a value of "" drops one.
func (e *sshEnv) target(u testenv.User, opts ...string) string {
	q := url.Values{}
	q.Set("identity", u.KeyFile)
	q.Set("known_hosts", e.knownHosts)
	q.Set("config", "none")
	q.Set("python", e.py)
	for i := 0; i+1 < len(opts); i += 2 {
		if opts[i+1] == "" {
			q.Del(opts[i])
		} else {
			q.Set(opts[i], opts[i+1])
		}
	}
	return fmt.Sprintf("ssh://%s@%s:%d?%s", u.Name, e.srv.Host, e.srv.Port, q.Encode())
}

// sshCLIEnv keeps the CLI away from the caller's ssh-agent.
var sshCLIEnv = []string{"SSH_AUTH_SOCK="}

// userDir makes a fresh directory that u owns (mode 0755), removed when
// the test ends.
func sshUserDir(t *testing.T, u testenv.User) string {
	t.Helper()
	d, err := os.MkdirTemp("", "spore-ssh-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(d, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	return d
}

func sshCmdline(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " ")
}

// sshdSession returns the sshd per-connection process ("sshd:
// USER@notty") that pid runs under: its parent, or its grandparent when the
// login shell that ran the boot command (`sh -c ...`) did not exec it.
// It fails the test otherwise.
func sshdSession(t *testing.T, pid int, user string) int {
	t.Helper()
	p := ppid(pid)
	if cl := sshCmdline(p); strings.HasPrefix(cl, "sh -c ") || strings.HasPrefix(cl, "/bin/sh -c ") {
		p = ppid(p)
	}
	cl := sshCmdline(p)
	if p <= 1 || !strings.HasPrefix(cl, "sshd") || !strings.Contains(cl, user) {
		t.Fatalf("the core (pid %d) does not run under an sshd session of %s: its ancestor %d is %q", pid, user, p, cl)
	}
	return p
}

// TestSSHRunStatusAndStreams: commands over one ssh hop, through the API
// and the CLI: exit status, stdout and stderr kept apart.
func TestSSHRunStatusAndStreams(t *testing.T) {
	e := newSSHEnv(t)
	u := e.srv.Users.Test
	h := newHost(t)
	ctx := testCtx(t, time.Minute)
	cx, err := h.Connect(ctx, e.target(u))
	if err != nil {
		t.Fatal(err)
	}
	if f := cx.Facts(); f.User != u.Name || f.UID != u.UID {
		t.Errorf("facts: user %q uid %d, want %s %d", f.User, f.UID, u.Name, u.UID)
	}
	for _, c := range []struct {
		shell          string
		code           int
		stdout, stderr string
	}{
		{"echo out; echo err >&2", 0, "out\n", "err\n"},
		{"id -un; echo oops >&2; exit 3", 3, u.Name + "\n", "oops\n"},
	} {
		var out, errb bytes.Buffer
		st, err := cx.Run(ctx, &core.Cmd{Shell: c.shell, Stdout: &out, Stderr: &errb})
		if err != nil || st != c.code || out.String() != c.stdout || errb.String() != c.stderr {
			t.Errorf("API %q: status %d err %v stdout %q stderr %q; want %d %q %q", c.shell, st, err, out.String(), errb.String(), c.code, c.stdout, c.stderr)
		}
	}

	r := sporeIn(t, nil, sshCLIEnv, "run", e.target(u), "--", "sh", "-c", "echo to-out; echo to-err >&2")
	if r.code != 0 || r.stdout != "to-out\n" || r.stderr != "to-err\n" {
		t.Errorf("CLI exit 0: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	r = sporeIn(t, nil, sshCLIEnv, "run", e.target(u), "--shell", "id -un; echo bad >&2; exit 3")
	if r.code != 3 || r.stdout != u.Name+"\n" || r.stderr != "bad\n" {
		t.Errorf("CLI exit 3: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	r = sporeIn(t, []byte("a\nb\nc\n"), sshCLIEnv, "run", e.target(u), "--", "wc", "-l")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "3" {
		t.Errorf("CLI stdin: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestSSHBinaryRoundTrip50MB: random bytes through a remote cat over ssh.
func TestSSHBinaryRoundTrip50MB(t *testing.T) {
	e := newSSHEnv(t)
	data := make([]byte, 50<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	h := newHost(t)
	ctx := testCtx(t, 2*time.Minute)
	cx, err := h.Connect(ctx, e.target(e.srv.Users.Test))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.New()
	var n countWriter
	t0 := time.Now()
	st, err := cx.Run(ctx, &core.Cmd{Argv: []string{"cat"}, Stdin: bytes.NewReader(data), Stdout: io.MultiWriter(sum, &n)})
	if err != nil || st != 0 {
		t.Fatalf("cat: %d %v", st, err)
	}
	want := sha256.Sum256(data)
	if int(n) != len(data) || !bytes.Equal(sum.Sum(nil), want[:]) {
		t.Fatalf("%d bytes came back of %d, sha256 differs: %v", n, len(data), !bytes.Equal(sum.Sum(nil), want[:]))
	}
	t.Logf("50 MB round trip over ssh in %v", time.Since(t0).Round(time.Millisecond))
}

// TestSSHPutGet20MB: spore put / spore get over ssh keep the content and
// the mode and leave no temp file; a put into a directory the user cannot
// write fails with one line and leaves nothing.
func TestSSHPutGet20MB(t *testing.T) {
	e := newSSHEnv(t)
	u := e.srv.Users.Test
	local := t.TempDir()
	data := make([]byte, 20<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(local, "blob.bin")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(src, 0o640); err != nil {
		t.Fatal(err)
	}
	remoteDir := sshUserDir(t, u)
	remote := filepath.Join(remoteDir, "blob.bin")

	r := sporeIn(t, nil, sshCLIEnv, "put", e.target(u), src, remote)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("put: code %d stderr %q", r.code, r.stderr)
	}
	got, err := os.ReadFile(remote)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("remote file differs (%d bytes of %d, %v)", len(got), len(data), err)
	}
	st, _ := os.Stat(remote)
	if st.Mode().Perm() != 0o640 {
		t.Errorf("remote mode %o, want 640", st.Mode().Perm())
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != u.UID {
		t.Errorf("remote file owned by uid %d, want %s (%d)", sys.Uid, u.Name, u.UID)
	}
	if names := sshDirNames(t, remoteDir); len(names) != 1 || names[0] != "blob.bin" {
		t.Errorf("remote directory after put holds %q, want only blob.bin", names)
	}

	// Into an existing directory: the local name is kept.
	r = sporeIn(t, nil, sshCLIEnv, "put", e.target(u), src, remoteDir+"/")
	if r.code != 0 {
		t.Fatalf("put into a directory: code %d stderr %q", r.code, r.stderr)
	}

	back := filepath.Join(local, "back.bin")
	r = sporeIn(t, nil, sshCLIEnv, "get", e.target(u), remote, back)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("get: code %d stderr %q", r.code, r.stderr)
	}
	got, err = os.ReadFile(back)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file got back differs (%d bytes of %d, %v)", len(got), len(data), err)
	}
	if st, _ := os.Stat(back); st.Mode().Perm() != 0o640 {
		t.Errorf("local mode after get %o, want 640", st.Mode().Perm())
	}
	if names := sshDirNames(t, local); len(names) != 2 {
		t.Errorf("local directory after get holds %q, want blob.bin and back.bin", names)
	}

	// A directory sporetest may not write: one line, nothing left behind.
	locked, err := os.MkdirTemp("", "spore-ssh-e2e-ro-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(locked)
	_ = os.Chmod(locked, 0o755) // root's; others may read and enter only
	r = sporeIn(t, nil, sshCLIEnv, "put", e.target(u), src, filepath.Join(locked, "blob.bin"))
	if r.code != 255 || !oneLine(r.stderr) || !strings.Contains(strings.ToLower(r.stderr), "permission denied") {
		t.Errorf("put into a read-only directory: code %d stderr %q; want 255 and one line saying permission denied", r.code, r.stderr)
	}
	if names := sshDirNames(t, locked); len(names) != 0 {
		t.Errorf("the failed put left %q behind", names)
	}
	t.Logf("put into a read-only directory: %s", strings.TrimSpace(r.stderr))
}

func sshDirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// socketInodes returns the inodes of the sockets pid has open.
func sshSocketInodes(pid int) map[string]bool {
	out := map[string]bool{}
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			out[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	return out
}

// tcpTo reports whether one of inodes is an established TCP connection to
// 127.0.0.1:port (from /proc/net/tcp).
func sshTCPTo(inodes map[string]bool, port int) bool {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return false
	}
	want := fmt.Sprintf("0100007F:%04X", port)
	for _, l := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(l)
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
		if len(f) > 9 && f[2] == want && f[3] == "01" && inodes[f[9]] {
			return true
		}
	}
	return false
}

// TestSSHJumpThroughContext: "ssh://A,ssh://B": the second hop is dialled
// by the first hop's core, and its core runs under its own sshd session.
func TestSSHJumpThroughContext(t *testing.T) {
	e := newSSHEnv(t)
	u := e.srv.Users.Test
	h := newHost(t)
	ctx := testCtx(t, time.Minute)
	cx, err := h.Connect(ctx, e.target(u)+","+e.target(u))
	if err != nil {
		t.Fatal(err)
	}
	first := cx.Parent()
	if first == nil || first.Parent() != nil {
		t.Fatalf("want a chain of two contexts")
	}
	if cx.Name() != "127.0.0.1,127.0.0.1" {
		t.Errorf("name of the second context: %q", cx.Name())
	}
	f1, f2 := first.Facts(), cx.Facts()
	if f1.PID == f2.PID {
		t.Fatalf("both hops report core pid %d", f1.PID)
	}
	s1 := sshdSession(t, f1.PID, u.Name)
	s2 := sshdSession(t, f2.PID, u.Name)
	if s1 == s2 {
		t.Errorf("both cores run under sshd session %d", s1)
	}
	// The second hop's TCP connection belongs to the first core.
	if !sshTCPTo(sshSocketInodes(f1.PID), e.srv.Port) {
		t.Errorf("the first core (pid %d) holds no TCP connection to the sshd port %d: the second hop was not dialled by it", f1.PID, e.srv.Port)
	}
	if argv := sshCmdline(f2.PID); !strings.Contains(argv, "(spore:127.0.0.1,127.0.0.1)") {
		t.Errorf("argv[0] of the second core = %q", argv)
	}
	var out, errb bytes.Buffer
	st, err := cx.Run(ctx, &core.Cmd{Shell: "echo $PPID; echo e >&2; exit 4", Stdout: &out, Stderr: &errb})
	if err != nil || st != 4 || errb.String() != "e\n" {
		t.Fatalf("run through two hops: %d %v stdout %q stderr %q", st, err, out.String(), errb.String())
	}
	if strings.TrimSpace(out.String()) != strconv.Itoa(f2.PID) {
		t.Errorf("the command's parent is %s, want the second core %d", strings.TrimSpace(out.String()), f2.PID)
	}

	// The CLI, the same chain.
	r := sporeIn(t, nil, sshCLIEnv, "run", e.target(u)+","+e.target(u), "--shell", "echo via-two; exit 3")
	if r.code != 3 || r.stdout != "via-two\n" || r.stderr != "" {
		t.Errorf("CLI through two hops: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}

	// Closing the chain ends both cores.
	cx.Close()
	first.Close()
	waitFor(t, 5*time.Second, "both cores to exit", func() bool { return !alive(f1.PID) && !alive(f2.PID) })
}

// TestSSHPingTwoHops: spore ping prints each hop with its setup phases.
func TestSSHPingTwoHops(t *testing.T) {
	e := newSSHEnv(t)
	u := e.srv.Users.Test
	hop := e.target(u)
	r := sporeIn(t, nil, sshCLIEnv, "ping", hop+","+hop)
	if r.code != 0 {
		t.Fatalf("ping: code %d stderr %q", r.code, r.stderr)
	}
	// Each hop prints its spec, then "setup T: phase T, ...", then "ping T".
	blocks := strings.Split(r.stdout, "ssh://")
	if len(blocks) != 3 {
		t.Fatalf("ping printed %d hops, want 2:\n%s", len(blocks)-1, r.stdout)
	}
	for i, b := range blocks[1:] {
		for _, phase := range []string{"dial ", "handshake ", "auth ", "boot", "ping "} {
			if !strings.Contains(b, phase) {
				t.Errorf("hop %d: no %q timing in:\n%s", i+1, strings.TrimSpace(phase), b)
			}
		}
		if !strings.Contains(b, "uid "+strconv.Itoa(u.UID)+" ("+u.Name+")") {
			t.Errorf("hop %d: facts do not name %s:\n%s", i+1, u.Name, b)
		}
	}
	if !strings.Contains(r.stdout, "connected in ") {
		t.Errorf("no total time:\n%s", r.stdout)
	}
	t.Logf("ping:\n%s", r.stdout)

	// --json: the same, machine-readable.
	r = sporeIn(t, nil, sshCLIEnv, "ping", "--json", hop+","+hop)
	if r.code != 0 || strings.Count(r.stdout, `"phases"`) != 2 || !strings.Contains(r.stdout, `"handshake"`) {
		t.Errorf("ping --json: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestSSHConnectionDrop: killing the sshd session under a core ends the
// core, what it runs, and the Context (parent lost).
func TestSSHConnectionDrop(t *testing.T) {
	e := newSSHEnv(t)
	u := e.srv.Users.Test
	h := newHost(t)
	ctx := testCtx(t, time.Minute)
	cx, err := h.Connect(ctx, e.target(u))
	if err != nil {
		t.Fatal(err)
	}
	marker := "300." + strconv.Itoa(1000+os.Getpid()%1000)
	p, err := cx.Start(ctx, &core.Cmd{Argv: []string{"sleep", marker}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the remote sleep to start", func() bool { return len(pidsWith("sleep\x00"+marker)) > 0 })
	sleeps := pidsWith("sleep\x00" + marker)
	corePID := cx.Facts().PID
	session := sshdSession(t, corePID, u.Name)
	if err := syscall.Kill(session, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	waitFor(t, 5*time.Second, "the core and the sleep to exit", func() bool {
		for _, s := range sleeps {
			if alive(s) {
				return false
			}
		}
		return !alive(corePID)
	})
	select {
	case <-cx.Done():
	case <-time.After(5*time.Second - time.Since(t0)):
		t.Fatal("the Context did not notice the connection drop within 5 s")
	}
	if k := sdk.KindOf(cx.Err()); k != sdk.KindParentLost {
		t.Errorf("Err() = %v (kind %q), want kind %q", cx.Err(), k, sdk.KindParentLost)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if st, err := p.Wait(wctx); err == nil {
		t.Errorf("Wait on a process of the lost context: status %d and no error", st)
	}
	if _, err := cx.Ping(ctx); err == nil {
		t.Error("Ping on a lost context succeeded")
	}
	t.Logf("after the drop (%v): %v", time.Since(t0).Round(time.Millisecond), cx.Err())
}

// TestSSHPluginKilled: SIGKILL of the ssh plugin under `spore run`: spore
// exits 255 with one line, and the remote core and its command go.
func TestSSHPluginKilled(t *testing.T) {
	e := newSSHEnv(t)
	u := e.srv.Users.Test
	marker := "300." + strconv.Itoa(2000+os.Getpid()%1000)
	cmd := exec.Command(filepath.Join(binDir, "spore"), "run", e.target(u), "--", "sleep", marker)
	cmd.Env = append(os.Environ(), sshCLIEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	waitFor(t, 20*time.Second, "the remote sleep to start", func() bool { return len(pidsWith("sleep\x00"+marker)) > 0 })
	sleeps := pidsWith("sleep\x00" + marker)
	corePID := ppid(sleeps[0])
	if !strings.Contains(sshCmdline(corePID), "(spore:127.0.0.1)") {
		t.Fatalf("the parent of the sleep is %d %q, not the core", corePID, sshCmdline(corePID))
	}
	plugin := 0
	for _, k := range childrenOf(cmd.Process.Pid) {
		if strings.Contains(sshCmdline(k), "spore-transport-ssh") {
			plugin = k
		}
	}
	if plugin == 0 {
		t.Fatalf("no spore-transport-ssh among the children of spore (%d)", cmd.Process.Pid)
	}
	if err := syscall.Kill(plugin, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatalf("spore still running 5 s after its plugin was killed; stderr %q", errb.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 255 || !oneLine(errb.String()) {
		t.Errorf("spore exited %d with stderr %q; want 255 and one line", code, errb.String())
	}
	t.Logf("plugin killed: %s", strings.TrimSpace(errb.String()))
	waitFor(t, 5*time.Second, "the remote core and sleep to exit", func() bool {
		for _, s := range sleeps {
			if alive(s) {
				return false
			}
		}
		return !alive(corePID)
	})
}

// TestSSHNoPython: a user without python3 on its PATH: one line, exit 255,
// naming the interpreter (python=python3) or all that were tried (auto).
func TestSSHNoPython(t *testing.T) {
	e := newSSHEnv(t)
	u := e.srv.Users.NoPython
	r := sporeIn(t, nil, sshCLIEnv, "run", e.target(u, "python", "python3"), "--", "true")
	if r.code != 255 || !oneLine(r.stderr) || !strings.Contains(r.stderr, "python3") || !strings.Contains(r.stderr, "not found") {
		t.Errorf("python=python3: code %d stderr %q; want 255 and one line naming python3 not found", r.code, r.stderr)
	}
	t.Logf("python=python3: %s", strings.TrimSpace(r.stderr))

	for _, py := range []string{"auto", ""} { // explicit, and the default
		r = sporeIn(t, nil, sshCLIEnv, "run", e.target(u, "python", py), "--", "true")
		if r.code != 255 || !oneLine(r.stderr) {
			t.Errorf("python=%q: code %d stderr %q; want 255 and one line", py, r.code, r.stderr)
			continue
		}
		for _, tried := range []string{"python3", "python2", "platform-python"} {
			if !strings.Contains(r.stderr, tried) {
				t.Errorf("python=%q: the error does not name %s, which was tried: %q", py, tried, r.stderr)
			}
		}
		t.Logf("python=%q: %s", py, strings.TrimSpace(r.stderr))
	}

	// The API: a typed error.
	h := newHost(t)
	_, err := h.Connect(testCtx(t, time.Minute), e.target(u, "python", "python3"))
	var se *sdk.Error
	if !errors.As(err, &se) || se.Kind != sdk.KindNoPython {
		t.Errorf("Connect: %v, want kind %q", err, sdk.KindNoPython)
	}
}

// TestSSHUnknownHostKey: a host missing from known_hosts is refused
// (strict), with one line that points at host_key=accept-new; accept-new
// then adds it.
func TestSSHUnknownHostKey(t *testing.T) {
	e := newSSHEnv(t)
	u := e.srv.Users.Test
	empty := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := sporeIn(t, nil, sshCLIEnv, "run", e.target(u, "known_hosts", empty), "--", "true")
	if r.code != 255 || !oneLine(r.stderr) || !strings.Contains(r.stderr, "accept-new") {
		t.Errorf("unknown host key: code %d stderr %q; want 255 and one line mentioning accept-new", r.code, r.stderr)
	}
	t.Logf("unknown host key: %s", strings.TrimSpace(r.stderr))
	if b, _ := os.ReadFile(empty); len(b) != 0 {
		t.Errorf("strict checking wrote to known_hosts: %q", b)
	}
	r = sporeIn(t, nil, sshCLIEnv, "run", e.target(u, "known_hosts", empty, "host_key", "accept-new"), "--", "true")
	if r.code != 0 {
		t.Fatalf("accept-new: code %d stderr %q", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(empty); !strings.Contains(string(b), strings.Fields(e.srv.HostPublicKeys[0])[1]) {
		t.Errorf("accept-new did not record the host key: %q", b)
	}
	r = sporeIn(t, nil, sshCLIEnv, "run", e.target(u, "known_hosts", empty), "--", "true")
	if r.code != 0 {
		t.Errorf("strict after accept-new: code %d stderr %q", r.code, r.stderr)
	}
}

// TestSSHUnknownOptionRefusedBeforeConnecting: ?nosuch=1 is refused with
// exit 255 and no connection reaches sshd.
func TestSSHUnknownOptionRefusedBeforeConnecting(t *testing.T) {
	e := newSSHEnv(t)
	u := e.srv.Users.Test
	before := sshConnectionsLogged(t, e.srv)
	r := sporeIn(t, nil, sshCLIEnv, "run", e.target(u, "nosuch", "1"), "--", "true")
	if r.code != 255 || !oneLine(r.stderr) || !strings.Contains(r.stderr, "nosuch") || !strings.Contains(strings.ToLower(r.stderr), "unknown option") {
		t.Errorf("code %d stderr %q; want 255 and one line naming the unknown option nosuch", r.code, r.stderr)
	}
	if r.took > 5*time.Second {
		t.Errorf("refusing an unknown option took %v", r.took)
	}
	// Through a chain: the bad option on the second hop stops the first.
	r = sporeIn(t, nil, sshCLIEnv, "run", e.target(u)+","+e.target(u, "nosuch", "1"), "--", "true")
	if r.code != 255 || !strings.Contains(r.stderr, "nosuch") {
		t.Errorf("second hop: code %d stderr %q", r.code, r.stderr)
	}
	time.Sleep(200 * time.Millisecond) // sshd logs a connection at once
	if after := sshConnectionsLogged(t, e.srv); after != before {
		t.Errorf("sshd logged %d new connections; the option must be refused before connecting", after-before)
	}
	t.Logf("unknown option: %s", strings.TrimSpace(r.stderr))
}

// connectionsLogged counts the connections sshd has logged.
func sshConnectionsLogged(t *testing.T, srv *testenv.SSHServer) int {
	t.Helper()
	b, err := os.ReadFile(srv.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "Connection from ")
}
