package ssh

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	xssh "golang.org/x/crypto/ssh"

	"github.com/sporehq/spore/internal/testenv"
	"github.com/sporehq/spore/sdk"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// fakeParent dials from this machine and records what it dialled.
type fakeParent struct {
	mu    sync.Mutex
	dials []string
}

func (p *fakeParent) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	p.mu.Lock()
	p.dials = append(p.dials, addr)
	p.mu.Unlock()
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func (p *fakeParent) Spawn(context.Context, sdk.SpawnRequest) (*sdk.Process, error) {
	return nil, errors.New("fakeParent: Spawn unsupported")
}

func (p *fakeParent) Local() bool { return true }

// fakePrompter answers from a list (the last answer repeats) and records
// what it was asked. With err set it fails every prompt.
type fakePrompter struct {
	mu      sync.Mutex
	answers []string
	err     error
	asked   []sdk.Prompt
}

func (p *fakePrompter) Prompt(_ context.Context, pr sdk.Prompt) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked = append(p.asked, pr)
	if p.err != nil {
		return "", p.err
	}
	if len(p.answers) == 0 {
		return "", sdk.Errorf(sdk.KindPromptUnavailable, "fakePrompter: no answer for %s", pr.Key)
	}
	a := p.answers[0]
	if len(p.answers) > 1 {
		p.answers = p.answers[1:]
	}
	return a, nil
}

func (p *fakePrompter) calls() []sdk.Prompt {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]sdk.Prompt(nil), p.asked...)
}

// env is one test's view of the shared sshd.
type env struct {
	srv        *testenv.SSHServer
	user       testenv.User
	knownHosts string
	parent     *fakeParent
	prompter   *fakePrompter
	phases     []string
	logBuf     *bytes.Buffer
	logMu      sync.Mutex
}

// newEnv starts (or shares) the test sshd and isolates the test from the
// machine's ~/.ssh and ssh-agent.
func newEnv(t *testing.T) *env {
	t.Helper()
	srv := testenv.SSHD(t)
	t.Setenv("HOME", t.TempDir())
	t.Setenv("SSH_AUTH_SOCK", "")
	return &env{
		srv:        srv,
		user:       srv.Users.Test,
		knownHosts: srv.WriteKnownHosts(t),
		parent:     &fakeParent{},
		prompter:   &fakePrompter{},
		logBuf:     &bytes.Buffer{},
	}
}

// opts returns the options every test needs (no ssh_config, the test's
// known_hosts) plus extra key=value pairs.
func (e *env) opts(kv ...string) map[string]string {
	m := map[string]string{"config": "none", "known_hosts": e.knownHosts}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(m, kv[i])
			continue
		}
		m[kv[i]] = kv[i+1]
	}
	return m
}

func (e *env) hop(user string, opts map[string]string) sdk.Hop {
	return sdk.Hop{Scheme: "ssh", User: user, Host: e.srv.Host, Port: e.srv.Port, Options: opts}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (e *env) open(t *testing.T, hop sdk.Hop, argv ...string) (*sdk.Stream, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := &sdk.OpenRequest{
		Name:     "test",
		Hop:      hop,
		Argv:     argv,
		Parent:   e.parent,
		Prompter: e.prompter,
		Log: hclog.New(&hclog.LoggerOptions{Level: hclog.Trace,
			Output: lockedWriter{&e.logMu, e.logBuf}}),
		Phase:   func(n string) { e.phases = append(e.phases, n) },
		Timeout: 30 * time.Second,
	}
	st, err := New().Open(ctx, req)
	if err == nil {
		t.Cleanup(func() { _ = st.Close() })
	}
	return st, err
}

func (e *env) log() string {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	return e.logBuf.String()
}

// result is what a command did.
type result struct {
	stdout, stderr string
	status         int
}

// run writes stdin, closes it, reads stdout and stderr to the end and waits
// for the exit status, through the returned stream only.
func run(t *testing.T, st *sdk.Stream, stdin string) result {
	t.Helper()
	conn := st.Conn.(*Conn)
	var errBuf bytes.Buffer
	errDone := make(chan struct{})
	go func() { _, _ = io.Copy(&errBuf, st.Stderr); close(errDone) }()
	if stdin != "" {
		if _, err := io.WriteString(conn, stdin); err != nil {
			t.Fatalf("write stdin: %v", err)
		}
	}
	// EOF: the command already exited and closed its side.
	if err := conn.CloseWrite(); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("CloseWrite: %v", err)
	}
	out, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("read stdout: %v", err)
	}
	<-errDone
	status, err := conn.Wait()
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if err := conn.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return result{string(out), errBuf.String(), status}
}

func mustOpen(t *testing.T, e *env, hop sdk.Hop, argv ...string) *sdk.Stream {
	t.Helper()
	st, err := e.open(t, hop, argv...)
	if err != nil {
		t.Fatalf("Open: %v\nlog:\n%s", err, e.log())
	}
	return st
}

func wantKind(t *testing.T, err error, k sdk.Kind) *sdk.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("Open succeeded, want an error of kind %s", k)
	}
	var se *sdk.Error
	if !errors.As(err, &se) || se.Kind != k {
		t.Fatalf("error %q (kind %s), want kind %s", err, sdk.KindOf(err), k)
	}
	if strings.Contains(se.Msg, "\n") {
		t.Errorf("message is not one line: %q", se.Msg)
	}
	t.Logf("%s: %s %v", se.Kind, se.Msg, se.Detail)
	return se
}

func hostKey(t *testing.T, line string) xssh.PublicKey {
	t.Helper()
	k, _, _, _, err := xssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeyAuth(t *testing.T) {
	e := newEnv(t)
	st := mustOpen(t, e, e.hop(e.user.Name, e.opts("identity", e.user.KeyFile)),
		"sh", "-c", "echo hello; id -un; cat; echo err >&2")
	r := run(t, st, "world\n")
	if want := "hello\n" + e.user.Name + "\nworld\n"; r.stdout != want || r.status != 0 {
		t.Fatalf("got %q status %d, want %q status 0", r.stdout, r.status, want)
	}
	if r.stderr != "err\n" {
		t.Errorf("stderr %q, want %q", r.stderr, "err\n")
	}
	if got := strings.Join(e.phases, ","); got != "dial,handshake,auth,boot" {
		t.Errorf("phases %s, want dial,handshake,auth,boot", got)
	}
	if n := len(e.prompter.calls()); n != 0 {
		t.Errorf("prompted %d times, want 0", n)
	}
	if len(e.parent.dials) != 1 || e.parent.dials[0] != e.srv.Addr {
		t.Errorf("parent dialled %v, want [%s]", e.parent.dials, e.srv.Addr)
	}
}

func TestExitStatusAndStdinEOF(t *testing.T) {
	e := newEnv(t)
	o := e.opts("identity", e.user.KeyFile)
	// cat only ends when CloseWrite passes EOF through to the remote stdin.
	r := run(t, mustOpen(t, e, e.hop(e.user.Name, o), "sh", "-c", "cat; echo done; exit 3"), "abc")
	if r.stdout != "abcdone\n" || r.status != 3 {
		t.Fatalf("got %q status %d, want %q status 3", r.stdout, r.status, "abcdone\n")
	}
}

func TestQuoting(t *testing.T) {
	e := newEnv(t)
	args := []string{"a b", "it's", "$HOME", "`id`", "$(id)", "*", "", `x"y`, "a\nb", `\`, "semi;colon", "tab\there", "ünï", "--", "-n"}
	argv := append([]string{"printf", "[%s]\\n"}, args...)
	r := run(t, mustOpen(t, e, e.hop(e.user.Name, e.opts("identity", e.user.KeyFile)), argv...), "")
	var want strings.Builder
	for _, a := range args {
		fmt.Fprintf(&want, "[%s]\n", a)
	}
	if r.stdout != want.String() || r.status != 0 {
		t.Fatalf("got %q (status %d, stderr %q), want %q", r.stdout, r.status, r.stderr, want.String())
	}
}

func TestAgentAuth(t *testing.T) {
	e := newEnv(t)
	if _, err := exec.LookPath("ssh-agent"); err != nil {
		testenv.Need(t, "ssh-agent", false, "ssh-agent not installed (apt-get install openssh-client)")
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	agentCmd := exec.Command("ssh-agent", "-D", "-a", sock)
	agentCmd.Stdout, agentCmd.Stderr = io.Discard, io.Discard
	if err := agentCmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agentCmd.Process.Kill(); _ = agentCmd.Wait() })
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i > 100 {
			t.Fatal("ssh-agent did not create its socket")
		}
		time.Sleep(20 * time.Millisecond)
	}
	add := exec.Command("ssh-add", e.user.KeyFile)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v: %s", err, out)
	}
	t.Setenv("SSH_AUTH_SOCK", sock)

	r := run(t, mustOpen(t, e, e.hop(e.user.Name, e.opts()), "id", "-un"), "")
	if r.stdout != e.user.Name+"\n" {
		t.Fatalf("got %q, want %q", r.stdout, e.user.Name+"\n")
	}
	if !strings.Contains(e.log(), "source=\"agent: ") && !strings.Contains(e.log(), "source=agent:") {
		t.Errorf("log does not show an agent key was used:\n%s", e.log())
	}
	if n := len(e.prompter.calls()); n != 0 {
		t.Errorf("prompted %d times, want 0", n)
	}
}

func TestPasswordAuth(t *testing.T) {
	e := newEnv(t)
	e.prompter.answers = []string{e.user.Password}
	r := run(t, mustOpen(t, e, e.hop(e.user.Name, e.opts()), "id", "-un"), "")
	if r.stdout != e.user.Name+"\n" {
		t.Fatalf("got %q", r.stdout)
	}
	calls := e.prompter.calls()
	if len(calls) != 1 || calls[0].Key != "password" || !calls[0].Secret || calls[0].Retry {
		t.Fatalf("prompts %+v, want one password prompt, secret, not retry", calls)
	}
	if strings.Contains(e.log(), e.user.Password) {
		t.Error("the password appears in the log")
	}
}

func TestPasswordRetry(t *testing.T) {
	e := newEnv(t)
	e.prompter.answers = []string{"wrong-password", e.user.Password}
	run(t, mustOpen(t, e, e.hop(e.user.Name, e.opts()), "true"), "")
	calls := e.prompter.calls()
	if len(calls) != 2 || calls[0].Retry || !calls[1].Retry || calls[1].Key != "password" {
		t.Fatalf("prompts %+v, want 2 password prompts, the second with Retry", calls)
	}
}

func TestPasswordRefused(t *testing.T) {
	e := newEnv(t)
	e.prompter.answers = []string{"wrong-password"}
	// NumberOfPasswordPrompts keeps PAM's delay after each failure short.
	cfg := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(cfg, []byte("NumberOfPasswordPrompts 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := e.open(t, e.hop(e.user.Name, e.opts("config", cfg)), "true")
	se := wantKind(t, err, sdk.KindAuth)
	if m := se.Detail["methods"]; !strings.Contains(m, "password") || !strings.Contains(m, "keyboard-interactive") {
		t.Errorf("Detail[methods] = %q, want keyboard-interactive and password", m)
	}
	if calls := e.prompter.calls(); len(calls) != 2 || calls[0].Retry || !calls[1].Retry {
		t.Errorf("prompts %+v, want 2 (keyboard-interactive, password), the second with Retry", calls)
	}
	if strings.Contains(err.Error(), "wrong-password") || strings.Contains(e.log(), "wrong-password") {
		t.Error("the password appears in the error or the log")
	}
}

func TestKeyRefused(t *testing.T) {
	e := newEnv(t)
	other := filepath.Join(t.TempDir(), "id_other")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	cfg := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(cfg, []byte("Host *\n  BatchMode yes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := e.open(t, e.hop(e.user.Name, e.opts("identity", other, "config", cfg)), "true")
	se := wantKind(t, err, sdk.KindAuth)
	if se.Detail["methods"] != "publickey" || !strings.Contains(se.Detail["identities"], other) {
		t.Errorf("Detail %v, want methods=publickey and identities naming %s", se.Detail, other)
	}

	// Without BatchMode, a password is needed and nobody can be asked.
	e.prompter.err = sdk.Errorf(sdk.KindPromptUnavailable, "no terminal")
	_, err = e.open(t, e.hop(e.user.Name, e.opts("identity", other)), "true")
	se = wantKind(t, err, sdk.KindPromptUnavailable)
	if !strings.Contains(se.Detail["methods"], "publickey") {
		t.Errorf("Detail[methods] = %q, want publickey listed", se.Detail["methods"])
	}
}

func TestEncryptedKey(t *testing.T) {
	e := newEnv(t)
	key := filepath.Join(t.TempDir(), "id_enc")
	b, err := os.ReadFile(e.user.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ssh-keygen", "-q", "-p", "-P", "", "-N", "s3cret phrase", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -p: %v: %s", err, out)
	}
	e.prompter.answers = []string{"not it", "s3cret phrase"}
	r := run(t, mustOpen(t, e, e.hop(e.user.Name, e.opts("identity", key)), "id", "-un"), "")
	if r.stdout != e.user.Name+"\n" {
		t.Fatalf("got %q", r.stdout)
	}
	calls := e.prompter.calls()
	if len(calls) != 2 || calls[0].Key != "passphrase" || !calls[0].Secret || calls[0].Retry || !calls[1].Retry {
		t.Fatalf("prompts %+v, want 2 passphrase prompts, the second with Retry", calls)
	}
}

func TestUnknownHostKey(t *testing.T) {
	e := newEnv(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := e.open(t, e.hop(e.user.Name, e.opts("identity", e.user.KeyFile, "known_hosts", kh)), "true")
	se := wantKind(t, err, sdk.KindHostKeyUnknown)
	// With nothing known, ed25519 is preferred, as OpenSSH does.
	if want := xssh.FingerprintSHA256(hostKey(t, e.srv.HostPublicKeys[0])); se.Detail["fingerprint"] != want {
		t.Errorf("fingerprint %q, want %q", se.Detail["fingerprint"], want)
	}
	if !strings.Contains(se.Msg, "host_key=accept-new") || !strings.Contains(se.Msg, "ssh-keyscan") {
		t.Errorf("message does not say how to fix it: %s", se.Msg)
	}
	if b, _ := os.ReadFile(kh); len(b) != 0 {
		t.Errorf("known_hosts was written in strict mode: %q", b)
	}
}

func TestAcceptNew(t *testing.T) {
	for _, hashed := range []bool{false, true} {
		t.Run("hashed="+strconv.FormatBool(hashed), func(t *testing.T) {
			e := newEnv(t)
			kh := filepath.Join(t.TempDir(), "sub", "known_hosts")
			cfg := "none"
			if hashed {
				cfg = filepath.Join(t.TempDir(), "config")
				if err := os.WriteFile(cfg, []byte("HashKnownHosts yes\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			o := e.opts("identity", e.user.KeyFile, "known_hosts", kh, "config", cfg, "host_key", "accept-new")
			run(t, mustOpen(t, e, e.hop(e.user.Name, o), "true"), "")
			b, err := os.ReadFile(kh)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			prefix := fmt.Sprintf("[127.0.0.1]:%d ", e.srv.Port)
			if hashed {
				prefix = "|1|"
			}
			if len(lines) != 1 || !strings.HasPrefix(lines[0], prefix) || !strings.HasSuffix(lines[0], e.srv.HostPublicKeys[0]) {
				t.Fatalf("known_hosts %q, want one line %q... ending with the ed25519 key", b, prefix)
			}
			// The next connect is strict and succeeds.
			delete(o, "host_key")
			run(t, mustOpen(t, e, e.hop(e.user.Name, o), "true"), "")
			if b2, _ := os.ReadFile(kh); !bytes.Equal(b, b2) {
				t.Errorf("known_hosts changed on the strict connect: %q", b2)
			}
		})
	}
}

func TestChangedHostKey(t *testing.T) {
	e := newEnv(t)
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := xssh.NewPublicKey(pub)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	content := fmt.Sprintf("# a comment\n[127.0.0.1]:%d %s", e.srv.Port, xssh.MarshalAuthorizedKey(other))
	if err := os.WriteFile(kh, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"", "accept-new"} {
		_, err := e.open(t, e.hop(e.user.Name, e.opts("identity", e.user.KeyFile, "known_hosts", kh, "host_key", mode)), "true")
		se := wantKind(t, err, sdk.KindHostKeyChanged)
		if se.Detail["file"] != kh+":2" {
			t.Errorf("Detail[file] = %q, want %s:2", se.Detail["file"], kh)
		}
		if want := xssh.FingerprintSHA256(hostKey(t, e.srv.HostPublicKeys[0])); se.Detail["fingerprint"] != want {
			t.Errorf("fingerprint %q, want %q", se.Detail["fingerprint"], want)
		}
		if !strings.Contains(se.Msg, kh+":2") {
			t.Errorf("message lacks file:line: %s", se.Msg)
		}
	}
	if b, _ := os.ReadFile(kh); string(b) != content {
		t.Errorf("known_hosts was modified: %q", b)
	}
}

// A host known only by its rsa key must be asked for that key, not for
// the ed25519 one OpenSSH (and we) otherwise prefer.
func TestHostKeyAlgorithmOrder(t *testing.T) {
	e := newEnv(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	line := fmt.Sprintf("[127.0.0.1]:%d %s\n", e.srv.Port, e.srv.HostPublicKeys[1])
	if err := os.WriteFile(kh, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, mustOpen(t, e, e.hop(e.user.Name, e.opts("identity", e.user.KeyFile, "known_hosts", kh)), "true"), "")
}

func TestConfigAlias(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	extra := filepath.Join(dir, "extra.conf")
	cfg := filepath.Join(dir, "config")
	if err := os.WriteFile(extra, []byte(fmt.Sprintf(`Host spore-alias-*
  HostName 127.0.0.1
  Port %d
  User %s
  IdentityFile %s
  UserKnownHostsFile %s
  IdentitiesOnly yes
`, e.srv.Port, e.user.Name, e.user.KeyFile, e.knownHosts)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("Host !spore-alias-excluded *\n  Include %s\n", extra)), 0o600); err != nil {
		t.Fatal(err)
	}
	hop := sdk.Hop{Scheme: "ssh", Host: "spore-alias-web", Options: map[string]string{"config": cfg}}
	r := run(t, mustOpen(t, e, hop, "id", "-un"), "")
	if r.stdout != e.user.Name+"\n" {
		t.Fatalf("got %q", r.stdout)
	}
	if len(e.parent.dials) != 1 || e.parent.dials[0] != e.srv.Addr {
		t.Errorf("parent dialled %v, want [%s]", e.parent.dials, e.srv.Addr)
	}
	// The negated pattern keeps the Include from applying: the alias is
	// then dialled as a host name, which does not resolve.
	hop.Host = "spore-alias-excluded"
	hop.Options["connect_timeout"] = "5"
	_, err := e.open(t, hop, "true")
	wantKind(t, err, sdk.KindConnect)
}

func TestProxyJump(t *testing.T) {
	e := newEnv(t)
	jump := fmt.Sprintf("%s@127.0.0.1:%d", e.user.Name, e.srv.Port)
	for _, chain := range []string{jump, jump + ",ssh://" + jump} {
		t.Run(strconv.Itoa(strings.Count(chain, ",")+1), func(t *testing.T) {
			e.parent.dials, e.phases = nil, nil
			st := mustOpen(t, e, e.hop(e.user.Name, e.opts("identity", e.user.KeyFile, "jump", chain)),
				"sh", "-c", "echo $SSH_CONNECTION; cat")
			r := run(t, st, "through\n")
			if !strings.HasSuffix(r.stdout, "through\n") {
				t.Fatalf("got %q", r.stdout)
			}
			// Only the first jump host is dialled from the parent; the
			// rest goes through direct-tcpip channels.
			if len(e.parent.dials) != 1 || e.parent.dials[0] != e.srv.Addr {
				t.Errorf("parent dialled %v, want only [%s]", e.parent.dials, e.srv.Addr)
			}
			if got := strings.Join(e.phases, ","); got != "dial,jump,handshake,auth,boot" {
				t.Errorf("phases %s", got)
			}
		})
	}

	// ProxyJump from ssh_config.
	cfg := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("Host target\n  HostName 127.0.0.1\n  Port %d\n  ProxyJump %s\nHost *\n  IdentityFile %s\n  UserKnownHostsFile %s\n",
		e.srv.Port, jump, e.user.KeyFile, e.knownHosts)), 0o600); err != nil {
		t.Fatal(err)
	}
	e.parent.dials = nil
	hop := sdk.Hop{Scheme: "ssh", User: e.user.Name, Host: "target", Options: map[string]string{"config": cfg}}
	run(t, mustOpen(t, e, hop, "true"), "")
	if len(e.parent.dials) != 1 {
		t.Errorf("parent dialled %v, want the jump host only", e.parent.dials)
	}

	// A jump host that cannot reach the target.
	_, err := e.open(t, sdk.Hop{Scheme: "ssh", User: e.user.Name, Host: "127.0.0.1", Port: closedPort(t),
		Options: e.opts("identity", e.user.KeyFile, "jump", jump)}, "true")
	se := wantKind(t, err, sdk.KindConnect)
	if !strings.Contains(se.Msg, "jump host") {
		t.Errorf("message does not name the jump host: %s", se.Msg)
	}
}

func TestNoPython(t *testing.T) {
	e := newEnv(t)
	u := e.srv.Users.NoPython
	st := mustOpen(t, e, e.hop(u.Name, e.opts("identity", u.KeyFile)), "python3", "-c", "print(1)")
	r := run(t, st, "")
	f := sdk.BootFailure{Stderr: []byte(r.stderr), Exited: true, ExitStatus: r.status, Python: "python3"}
	err := New().(sdk.Classifier).Classify(f)
	se := wantKind(t, err, sdk.KindNoPython)
	if !strings.Contains(se.Msg, "python3: not found") || se.Detail["python"] != "python3" {
		t.Errorf("got %q %v, stderr was %q status %d", se.Msg, se.Detail, r.stderr, r.status)
	}
}

func TestKeepalive(t *testing.T) {
	e := newEnv(t)
	r := run(t, mustOpen(t, e, e.hop(e.user.Name, e.opts("identity", e.user.KeyFile, "keepalive", "1")), "sh", "-c", "sleep 2.5; echo ok"), "")
	if r.stdout != "ok\n" {
		t.Fatalf("got %q", r.stdout)
	}
}

// closedPort returns a local port nobody listens on.
func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return p
}
