package e2e

// Chains of real transports: sudo over ssh (the sudo runs on the far side
// of the real test sshd, as the ssh user, with the real sudo and its
// password), three hops, ssh over ssh then sudo, and what happens to a
// chain when a piece of it dies. Docker over ssh is in docker_test.go.
//
// spore runs as root here: the sudo that asks for a password runs on the
// remote side as sporesudo (timestamp_timeout=0, so it asks every time).

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
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

// chainEnv is the test sshd, a known_hosts file for it, the test users and
// a file holding sporesudo's password (for the API, which reads no
// environment variable of its own).
type chainEnv struct {
	srv        *testenv.SSHServer
	users      *testenv.Users
	knownHosts string
	py         string
	pwFile     string
}

// chainPWEnv is the variable the CLI runs take sporesudo's password from.
const chainPWEnv = "SPORE_CHAIN_PW"

func newChainEnv(t *testing.T) *chainEnv {
	t.Helper()
	testenv.Root(t)
	testenv.Sudo(t)
	srv := testenv.SSHD(t)
	e := &chainEnv{srv: srv, users: srv.Users, knownHosts: srv.WriteKnownHosts(t), py: testenv.SystemPython(t)}
	e.pwFile = filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(e.pwFile, []byte(e.users.Sudo.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// ssh is an ssh:// hop to the test sshd as u, with u's key, the test
// known_hosts, no ssh_config and /usr/bin/python3.
func (e *chainEnv) ssh(u testenv.User) string {
	q := url.Values{}
	q.Set("identity", u.KeyFile)
	q.Set("known_hosts", e.knownHosts)
	q.Set("config", "none")
	q.Set("python", e.py)
	return fmt.Sprintf("ssh://%s@%s:%d?%s", u.Name, e.srv.Host, e.srv.Port, q.Encode())
}

// sudo is a sudo:// hop becoming user with /usr/bin/python3; pw is
// "env" (password_env=chainPWEnv), "file" (password_file=) or "".
func (e *chainEnv) sudo(user, pw string) string {
	s := "sudo://" + user + "?python=" + e.py
	switch pw {
	case "env":
		s += "&password_env=" + chainPWEnv
	case "file":
		s += "&password_file=" + url.QueryEscape(e.pwFile)
	}
	return s
}

// sudoOverSSH is ssh as sporesudo, then sudo://root with its password.
func (e *chainEnv) sudoOverSSH(pw string) string {
	return e.ssh(e.users.Sudo) + "," + e.sudo("root", pw)
}

// chainCLIEnv: the right password in spore's environment, no ssh-agent.
func (e *chainEnv) cliEnv(password string) []string {
	return []string{chainPWEnv + "=" + password, "SSH_AUTH_SOCK="}
}

func chainCmdline(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " ")
}

// chainDescends reports whether pid has ancestor among its ancestors.
func chainDescends(pid, ancestor int) bool {
	for i := 0; i < 64 && pid > 1; i++ {
		pid = ppid(pid)
		if pid == ancestor {
			return true
		}
	}
	return false
}

// chainTCPTo reports whether pid holds an established TCP connection to
// 127.0.0.1:port.
func chainTCPTo(pid, port int) bool { return sshTCPTo(sshSocketInodes(pid), port) }

// 1. sudo over ssh with the password from password_env: the command runs
// as root; spore ping shows both hops' facts and timings.
func TestChainSudoOverSSH(t *testing.T) {
	e := newChainEnv(t)
	u := e.users.Sudo
	target := e.sudoOverSSH("env")
	r := sporeIn(t, nil, e.cliEnv(u.Password), "run", target, "--", "id", "-u")
	if r.code != 0 || r.stdout != "0\n" || r.stderr != "" {
		t.Fatalf("id -u: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}

	r = sporeIn(t, nil, e.cliEnv(u.Password), "ping", target)
	if r.code != 0 {
		t.Fatalf("ping: code %d stderr %q", r.code, r.stderr)
	}
	i := strings.Index(r.stdout, "\nsudo://root\n")
	if !strings.HasPrefix(r.stdout, fmt.Sprintf("ssh://%s@%s\n", u.Name, e.srv.Addr)) || i < 0 {
		t.Fatalf("ping does not print the ssh hop then the sudo hop:\n%s", r.stdout)
	}
	hops := []struct {
		block, facts string
		phases       []string
	}{
		{r.stdout[:i], fmt.Sprintf("uid %d (%s)", u.UID, u.Name), []string{"dial ", "handshake ", "auth ", "boot ", "hello "}},
		// auth: the sudo plugin answered sudo's password prompt.
		{r.stdout[i:], "uid 0 (root)", []string{"spawn ", "first marker ", "auth ", "hello "}},
	}
	for _, h := range hops {
		for _, w := range append(h.phases, h.facts, "setup ", "ping ", e.py) {
			if !strings.Contains(h.block, w) {
				t.Errorf("no %q in this hop of the ping:\n%s", strings.TrimSpace(w), h.block)
			}
		}
	}
	if !strings.Contains(r.stdout, "connected in ") {
		t.Errorf("no total time:\n%s", r.stdout)
	}
	t.Logf("ping:\n%s", r.stdout)
}

// 2. A wrong sudo password over ssh: a typed incorrect-password error
// (API), exit 255 with one line (CLI), quickly; the password is not shown.
// It also proves sudo really asks: with no password needed it would pass.
func TestChainSudoOverSSHWrongPassword(t *testing.T) {
	e := newChainEnv(t)
	u := e.users.Sudo
	t.Run("cli", func(t *testing.T) {
		t.Parallel()
		r := sporeIn(t, nil, e.cliEnv("not-"+u.Password), "run", e.sudoOverSSH("env"), "--", "id", "-u")
		wantFailure(t, r, 10*time.Second, "incorrect password", "sudo://root")
		if strings.Contains(r.stderr, u.Password) {
			t.Error("the password appears in the error")
		}
		t.Logf("%s (%v)", strings.TrimSpace(r.stderr), r.took.Round(time.Millisecond))
	})
	t.Run("api", func(t *testing.T) {
		t.Parallel()
		bad := filepath.Join(t.TempDir(), "pw")
		if err := os.WriteFile(bad, []byte("not-"+u.Password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		h := newHost(t)
		t0 := time.Now()
		_, err := h.Connect(testCtx(t, time.Minute), e.ssh(u)+",sudo://root?python="+e.py+"&password_file="+url.QueryEscape(bad))
		if k := sdk.KindOf(err); k != sdk.KindIncorrectPassword {
			t.Errorf("Connect: %v (kind %q), want kind %q", err, k, sdk.KindIncorrectPassword)
		}
		if d := time.Since(t0); d > 10*time.Second {
			t.Errorf("failing took %v", d)
		}
	})
}

// 3. A user sudo refuses (not in sudoers), over ssh: a typed not-allowed
// error.
func TestChainSudoOverSSHNotAllowed(t *testing.T) {
	e := newChainEnv(t)
	u := e.users.Deny
	target := e.ssh(u) + "," + e.sudo("root", "env")
	t.Run("cli", func(t *testing.T) {
		t.Parallel()
		r := sporeIn(t, nil, e.cliEnv(u.Password), "run", target, "--", "id", "-u")
		wantFailure(t, r, 10*time.Second, "not allowed", "sudoers")
		t.Logf("%s (%v)", strings.TrimSpace(r.stderr), r.took.Round(time.Millisecond))
	})
	t.Run("api", func(t *testing.T) {
		t.Parallel()
		pw := filepath.Join(t.TempDir(), "pw")
		if err := os.WriteFile(pw, []byte(u.Password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		h := newHost(t)
		_, err := h.Connect(testCtx(t, time.Minute), e.ssh(u)+",sudo://root?python="+e.py+"&password_file="+url.QueryEscape(pw))
		if k := sdk.KindOf(err); k != sdk.KindNotAllowed {
			t.Errorf("Connect: %v (kind %q), want kind %q", err, k, sdk.KindNotAllowed)
		}
	})
}

// 4. Three hops: ssh as sporesudo, sudo to root (password), sudo to
// sporeapp (root needs none). The innermost core is named after the whole
// chain.
func TestChainThreeHops(t *testing.T) {
	e := newChainEnv(t)
	app := e.users.App
	target := e.sudoOverSSH("env") + "," + e.sudo(app.Name, "")
	r := sporeIn(t, nil, e.cliEnv(e.users.Sudo.Password), "run", target, "--", "id", "-un")
	if r.code != 0 || r.stdout != app.Name+"\n" {
		t.Fatalf("CLI id -un: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}

	h := newHost(t)
	ctx := testCtx(t, time.Minute)
	cx, err := h.Connect(ctx, e.sudoOverSSH("file")+","+e.sudo(app.Name, ""))
	if err != nil {
		t.Fatal(err)
	}
	const name = "127.0.0.1,sudo:root,sudo:sporeapp"
	if cx.Name() != name {
		t.Errorf("name %q, want %q", cx.Name(), name)
	}
	var out bytes.Buffer
	if st, err := cx.Run(ctx, &core.Cmd{Argv: []string{"id", "-un"}, Stdout: &out}); err != nil || st != 0 || out.String() != app.Name+"\n" {
		t.Fatalf("API id -un: %d %v %q", st, err, out.String())
	}
	f := cx.Facts()
	if f.UID != app.UID || f.User != app.Name {
		t.Errorf("facts: uid %d user %q", f.UID, f.User)
	}
	if argv := chainCmdline(f.PID); !strings.Contains(argv, "(spore:"+name+")") {
		t.Errorf("argv[0] of the innermost core (pid %d) = %q", f.PID, argv)
	}
	// Each core runs where the one above it spawned it, as its user.
	pids := []int{}
	for c := cx; c != nil; c = c.Parent() {
		pids = append([]int{c.Facts().PID}, pids...)
	}
	if len(pids) != 3 {
		t.Fatalf("chain of %d contexts", len(pids))
	}
	for i := 1; i < 3; i++ {
		if !chainDescends(pids[i], pids[i-1]) {
			t.Errorf("core %d (%s) is not a descendant of core %d", pids[i], chainCmdline(pids[i]), pids[i-1])
		}
	}
}

// 5. While a sudo-over-ssh connection is up, no process it involves
// (plugins, sshd session, sudo, cores, the command) but spore itself has
// the password in its argv or environment.
func TestChainSecretNotExposed(t *testing.T) {
	e := newChainEnv(t)
	pw := e.users.Sudo.Password
	before := pids()
	marker := fmt.Sprintf("3.%d", 100000+os.Getpid()%100000) // sleep 3.1xxxxx
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "spore"), "run", e.sudoOverSSH("env"), "--", "sleep", marker)
	cmd.Env = append(os.Environ(), e.cliEnv(pw)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	waitFor(t, 20*time.Second, "the remote sleep (the connection up)", func() bool { return len(pidsWith("sleep\x00"+marker)) > 0 })

	sporePID := cmd.Process.Pid
	var seen []string
	for pid := range pids() {
		if before[pid] || pid == sporePID || !(chainDescends(pid, sporePID) || chainDescends(pid, e.srv.PID)) {
			continue
		}
		cl := chainCmdline(pid)
		seen = append(seen, cl)
		for _, f := range []string{"cmdline", "environ"} {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
			if err == nil && bytes.Contains(b, []byte(pw)) {
				t.Errorf("process %d (%.80s) has the password in /proc/%d/%s", pid, cl, pid, f)
			}
		}
	}
	all := strings.Join(seen, "\n")
	for _, want := range []string{"spore-transport-ssh", "spore-transport-sudo", "\nsshd", "\nsudo ", "(spore:127.0.0.1)", "(spore:127.0.0.1,sudo:root)", "\nsleep " + marker} {
		if !strings.Contains("\n"+all, want) {
			t.Errorf("no process %q among those scanned:\n%s", strings.TrimPrefix(want, "\n"), all)
		}
	}
	t.Logf("scanned %d processes", len(seen))
	if err := cmd.Wait(); err != nil {
		t.Fatalf("spore: %v; stderr %q", err, errb.String())
	}
}

// 6. 50 MB of random bytes through cat two hops deep.
func TestChainBinaryRoundTrip50MB(t *testing.T) {
	e := newChainEnv(t)
	data := make([]byte, 50<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	h := newHost(t)
	ctx := testCtx(t, 2*time.Minute)
	cx, err := h.Connect(ctx, e.sudoOverSSH("file"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.New()
	var n countingWriter
	t0 := time.Now()
	st, err := cx.Run(ctx, &core.Cmd{Argv: []string{"cat"}, Stdin: bytes.NewReader(data), Stdout: io.MultiWriter(sum, &n)})
	if err != nil || st != 0 {
		t.Fatalf("cat: %d %v", st, err)
	}
	want := sha256.Sum256(data)
	if int(n) != len(data) || !bytes.Equal(sum.Sum(nil), want[:]) {
		t.Fatalf("%d bytes came back of %d; sha256 equal: %v", n, len(data), bytes.Equal(sum.Sum(nil), want[:]))
	}
	t.Logf("50 MB through ssh+sudo in %v", time.Since(t0).Round(time.Millisecond))
}

type countingWriter int

func (w *countingWriter) Write(p []byte) (int, error) {
	*w += countingWriter(len(p))
	return len(p), nil
}

// 7. Lifetime: whatever piece of a sudo-over-ssh chain dies or is closed,
// every remote interpreter and what runs under it go within 5 s, and the
// inner context ends with a typed error.
func TestChainLifetime(t *testing.T) {
	e := newChainEnv(t)
	for i, how := range []string{"kill-ssh-plugin", "kill-outer-core", "close-outer", "close-host"} {
		i, how := i, how
		t.Run(how, func(t *testing.T) {
			before := map[int]bool{}
			for _, k := range childrenOf(os.Getpid()) {
				before[k] = true
			}
			h := newHost(t)
			ctx := testCtx(t, time.Minute)
			inner, err := h.Connect(ctx, e.sudoOverSSH("file"))
			if err != nil {
				t.Fatal(err)
			}
			outer := inner.Parent()
			cores := []int{outer.Facts().PID, inner.Facts().PID}
			if inner.Facts().UID != 0 || !chainDescends(cores[1], cores[0]) {
				t.Fatalf("inner core %d (uid %d) is not root under the outer core %d", cores[1], inner.Facts().UID, cores[0])
			}
			marker := fmt.Sprintf("300.%d%d", i, 10000+os.Getpid()%10000)
			if _, err := inner.Start(ctx, &core.Cmd{Argv: []string{"sleep", marker}}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, "the sleep to start", func() bool { return len(pidsWith("sleep\x00"+marker)) > 0 })
			sleeps := pidsWith("sleep\x00" + marker)
			if !chainDescends(sleeps[0], cores[1]) {
				t.Fatalf("the sleep %d does not run under the inner core %d", sleeps[0], cores[1])
			}

			switch how {
			case "kill-ssh-plugin":
				plugin := 0
				for _, k := range childrenOf(os.Getpid()) {
					if !before[k] && alive(k) && strings.Contains(chainCmdline(k), "spore-transport-ssh") {
						if plugin != 0 {
							t.Fatalf("two new ssh plugins: %d and %d", plugin, k)
						}
						plugin = k
					}
				}
				if plugin == 0 {
					t.Fatal("no spore-transport-ssh among this process's new children")
				}
				if err := syscall.Kill(plugin, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			case "kill-outer-core":
				if err := syscall.Kill(cores[0], syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			case "close-outer":
				go outer.Close()
			case "close-host":
				go h.Close()
			}
			t0 := time.Now()
			waitFor(t, 5*time.Second, "both cores and the sleep to exit", func() bool {
				for _, p := range append(cores, sleeps...) {
					if alive(p) {
						return false
					}
				}
				return true
			})
			select {
			case <-inner.Done():
			case <-time.After(5*time.Second - time.Since(t0)):
				t.Fatal("the inner context is still up")
			}
			// A closed context's core exits at EOF, so its Err may say
			// parent-lost as well as closed.
			switch k := sdk.KindOf(inner.Err()); k {
			case sdk.KindParentLost, sdk.KindTransportExited:
			case sdk.KindClosed:
				if strings.HasPrefix(how, "kill") {
					t.Errorf("inner Err() = %v (kind %q) after a crash", inner.Err(), k)
				}
			default:
				t.Errorf("inner Err() = %v (kind %q)", inner.Err(), k)
			}
			if _, err := inner.Ping(ctx); err == nil {
				t.Error("Ping through a dead chain succeeded")
			}
			t.Logf("%s: gone in %v; inner: %v", how, time.Since(t0).Round(time.Millisecond), inner.Err())
		})
	}
}

// 8. ssh, then ssh again dialled by the first core, then sudo.
func TestChainSSHSSHSudo(t *testing.T) {
	e := newChainEnv(t)
	u := e.users.Sudo
	target := e.ssh(u) + "," + e.sudoOverSSH("env")
	r := sporeIn(t, nil, e.cliEnv(u.Password), "run", target, "--", "id", "-u")
	if r.code != 0 || r.stdout != "0\n" {
		t.Fatalf("CLI id -u: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}

	h := newHost(t)
	ctx := testCtx(t, time.Minute)
	cx, err := h.Connect(ctx, e.ssh(u)+","+e.sudoOverSSH("file"))
	if err != nil {
		t.Fatal(err)
	}
	second := cx.Parent()
	first := second.Parent()
	if first == nil || first.Parent() != nil {
		t.Fatal("want a chain of three contexts")
	}
	if cx.Facts().UID != 0 || second.Facts().User != u.Name || first.Facts().User != u.Name {
		t.Errorf("users: %s, %s, uid %d", first.Facts().User, second.Facts().User, cx.Facts().UID)
	}
	const name = "127.0.0.1,127.0.0.1,sudo:root"
	if argv := chainCmdline(cx.Facts().PID); !strings.Contains(argv, "(spore:"+name+")") {
		t.Errorf("argv[0] of the innermost core = %q", argv)
	}
	// The second ssh connection is the first core's.
	if !chainTCPTo(first.Facts().PID, e.srv.Port) {
		t.Errorf("the first core (pid %d) holds no TCP connection to sshd: it did not dial the second hop", first.Facts().PID)
	}
	if chainDescends(second.Facts().PID, first.Facts().PID) {
		t.Errorf("the second core runs under the first, not under its own sshd session")
	}
	if !chainDescends(cx.Facts().PID, second.Facts().PID) {
		t.Errorf("the sudo core does not run under the second core")
	}
}
