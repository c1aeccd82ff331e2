package ssh

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	xssh "golang.org/x/crypto/ssh"

	"github.com/sporehq/spore/sdk"
)

func TestShellQuote(t *testing.T) {
	cases := []struct {
		argv []string
		want string
	}{
		{[]string{"python3", "-c", "print(1)"}, `python3 -c 'print(1)'`},
		{[]string{"a b", "it's", "", "$HOME"}, `'a b' 'it'\''s' '' '$HOME'`},
		{[]string{"/usr/bin/python3", "x=1,y:2@h%+./-_"}, `/usr/bin/python3 x=1,y:2@h%+./-_`},
		{[]string{"a\nb", "*", "~"}, "'a\nb' '*' '~'"},
	}
	for _, c := range cases {
		if got := shellQuote(c.argv); got != c.want {
			t.Errorf("shellQuote(%q) = %s, want %s", c.argv, got, c.want)
		}
	}
}

func TestParseJumps(t *testing.T) {
	got, err := parseJumps("a, deploy@b:2222,ssh://c@[::1]:22,[fe80::1]")
	if err != nil {
		t.Fatal(err)
	}
	want := []jumpSpec{{"", "a", 0}, {"deploy", "b", 2222}, {"c", "::1", 22}, {"", "fe80::1", 0}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("jump %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, s := range []string{"none", ""} {
		if j, err := parseJumps(s); err != nil || len(j) != 0 {
			t.Errorf("parseJumps(%q) = %v, %v", s, j, err)
		}
	}
	for _, bad := range []string{"a,,b", "@h", "h:x", "h:0", "a b"} {
		if _, err := parseJumps(bad); err == nil {
			t.Errorf("parseJumps(%q) accepted", bad)
		}
	}
}

func TestClassify(t *testing.T) {
	tr := New().(sdk.Classifier)
	yes := []sdk.BootFailure{
		{Stderr: []byte("sh: 1: python3: not found\n"), Exited: true, ExitStatus: 127, Python: "python3"},
		{Stderr: []byte("bash: line 1: python3: command not found\n"), Exited: true, ExitStatus: 127, Python: "python3"},
		{Stderr: []byte("zsh:1: command not found: python3\n"), Python: "python3"},
		{Stderr: []byte("fish: Unknown command: python3\n"), Python: "python3"},
		{Stderr: []byte("bash: /opt/py/bin/python3: No such file or directory\n"), Python: "/opt/py/bin/python3"},
		{Stderr: []byte("some banner\n"), Exited: true, ExitStatus: 127, Python: "python3"},
	}
	for _, f := range yes {
		err := tr.Classify(f)
		if sdk.KindOf(err) != sdk.KindNoPython {
			t.Errorf("Classify(%q) = %v, want no-python", f.Stderr, err)
			continue
		}
		se := err.(*sdk.Error)
		if !strings.Contains(se.Msg, f.Python) || strings.Contains(se.Msg, "\n") {
			t.Errorf("message %q should name %s on one line", se.Msg, f.Python)
		}
		if line := strings.TrimSpace(string(f.Stderr)); f.ExitStatus != 127 || strings.Contains(line, "python") {
			if !strings.Contains(se.Msg, line) {
				t.Errorf("message %q should quote %q", se.Msg, line)
			}
		}
	}
	no := []sdk.BootFailure{
		{Stderr: []byte("Traceback ...\nZeroDivisionError\n"), Exited: true, ExitStatus: 1, Python: "python3"},
		{Stderr: []byte("sh: 1: foo: not found\n"), Exited: true, ExitStatus: 2, Python: "python3"},
		{Exited: false, ExitStatus: -1, Python: "python3"},
	}
	for _, f := range no {
		if err := tr.Classify(f); err != nil {
			t.Errorf("Classify(%q) = %v, want nil", f.Stderr, err)
		}
	}
}

func TestInfo(t *testing.T) {
	info := New().Info()
	if info.Name != "ssh" || info.Protocol != sdk.ProtocolVersion {
		t.Fatalf("info %+v", info)
	}
	var names []string
	for _, o := range info.Options {
		if o.Help == "" {
			t.Errorf("option %s has no help", o.Name)
		}
		names = append(names, o.Name)
	}
	if got := strings.Join(names, ","); got != "identity,known_hosts,host_key,jump,config,connect_timeout,keepalive" {
		t.Errorf("options %s", got)
	}
}

func TestBadOptions(t *testing.T) {
	for _, m := range []map[string]string{
		{"host_key": "maybe"},
		{"jump": "a,,b"},
		{"identity": "/nonexistent/key"},
		{"connect_timeout": "soon"},
		{"keepalive": "-1"},
		{"config": "/nonexistent/config"},
	} {
		_, err := New().Open(context.Background(), &sdk.OpenRequest{
			Hop: sdk.Hop{Host: "h", Options: m}, Argv: []string{"true"}, Parent: &fakeParent{},
		})
		if sdk.KindOf(err) != sdk.KindBadTarget {
			t.Errorf("options %v: %v, want bad-target", m, err)
		}
	}
}

func TestResolveConfig(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	os.WriteFile(filepath.Join(dir, "inc.conf"), []byte("Host web*\n  Port 2222\n  IdentityFile ~/.ssh/inc_%r\n"), 0o600)
	os.WriteFile(cfg, []byte(`Host web1
  HostName %h.example.com
  User deploy
  IdentityFile ~/.ssh/web_%h
  StrictHostKeyChecking accept-new
  ServerAliveInterval 15
  ServerAliveCountMax 5
  ConnectTimeout 7
  ProxyJump bastion
Include `+filepath.Join(dir, "inc.conf")+`
Host *
  HashKnownHosts yes
  UserKnownHostsFile ~/kh1 %d/kh2
`), 0o600)
	c, err := loadConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := parseOptions(map[string]string{})
	h, err := c.resolve("web1", "", 0, o)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("hostName", h.hostName, "web1.example.com")
	check("port", h.port, 2222)
	check("user", h.user, "deploy")
	check("identities", strings.Join(h.identities, " "),
		filepath.Join(home, ".ssh/web_web1.example.com")+" "+filepath.Join(home, ".ssh/inc_deploy"))
	check("hostKeyMode", h.hostKeyMode, hostKeyAcceptNew)
	check("hash", h.hashKnownHosts, true)
	check("knownHosts", strings.Join(h.userKnownHosts, " "), filepath.Join(home, "kh1")+" "+filepath.Join(home, "kh2"))
	check("alive", h.aliveInterval, 15*time.Second)
	check("aliveMax", h.aliveCountMax, 5)
	check("connectTimeout", h.connectTimeout, 7*time.Second)
	check("proxyJump", h.proxyJump, "bastion")

	// The hop's user, port and options win over ssh_config.
	o, err = parseOptions(map[string]string{"identity": cfg, "host_key": "strict", "known_hosts": "~/other", "connect_timeout": "3", "keepalive": "0"})
	if err != nil {
		t.Fatal(err)
	}
	h, _ = c.resolve("web1", "root", 22, o)
	check("user", h.user, "root")
	check("port", h.port, 22)
	check("first identity", h.identities[0], cfg)
	check("hostKeyMode", h.hostKeyMode, hostKeyStrict)
	check("knownHosts", strings.Join(h.userKnownHosts, " "), filepath.Join(home, "other"))
	check("connectTimeout", h.connectTimeout, 3*time.Second)
	check("alive", h.aliveInterval, time.Duration(0))

	// Defaults when nothing matches.
	h, _ = c.resolve("db", "", 0, &options{})
	check("port", h.port, 22)
	check("identities", strings.Join(h.identities, " "), strings.Join([]string{
		filepath.Join(home, ".ssh/id_ed25519"), filepath.Join(home, ".ssh/id_ecdsa"), filepath.Join(home, ".ssh/id_rsa")}, " "))
	check("hostKeyMode", h.hostKeyMode, hostKeyStrict)

	// An unparseable config is refused with its name.
	os.WriteFile(cfg, []byte("Match exec true\n  User x\n"), 0o600)
	if _, err := loadConfig(cfg); sdk.KindOf(err) != sdk.KindBadTarget || !strings.Contains(err.Error(), cfg) {
		t.Errorf("bad config: %v", err)
	}
}

func TestProxyCommandRefused(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config")
	os.WriteFile(cfg, []byte("Host *\n  ProxyCommand nc %h %p\n"), 0o600)
	_, err := New().Open(context.Background(), &sdk.OpenRequest{
		Hop: sdk.Hop{Host: "h", Options: map[string]string{"config": cfg}}, Argv: []string{"true"}, Parent: &fakeParent{},
	})
	if sdk.KindOf(err) != sdk.KindBadTarget || !strings.Contains(err.Error(), "ProxyCommand") {
		t.Errorf("got %v", err)
	}
}

func TestConnectErrors(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	// A server that is not an ssh server: it closes at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	// A server that never speaks.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var held []net.Conn
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	cases := []struct {
		host string
		port int
		opts map[string]string
		want string
	}{
		{"127.0.0.1", closedPort(t), nil, "refused"},
		{"spore-no-such-host.invalid", 22, map[string]string{"connect_timeout": "5"}, "resolve"},
		{"127.0.0.1", l.Addr().(*net.TCPAddr).Port, nil, "closed the connection"},
		{"127.0.0.1", silent.Addr().(*net.TCPAddr).Port, map[string]string{"connect_timeout": "1"}, "connect_timeout"},
	}
	for _, c := range cases {
		opts := map[string]string{"config": "none"}
		for k, v := range c.opts {
			opts[k] = v
		}
		start := time.Now()
		_, err := New().Open(context.Background(), &sdk.OpenRequest{
			Hop: sdk.Hop{Host: c.host, Port: c.port, Options: opts}, Argv: []string{"true"},
			Parent: &fakeParent{}, Prompter: &fakePrompter{},
		})
		if sdk.KindOf(err) != sdk.KindConnect || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:%d: %v (kind %s), want connect error with %q", c.host, c.port, err, sdk.KindOf(err), c.want)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s:%d took %v", c.host, c.port, d)
		}
	}

	// The setup deadline ends a handshake that hangs.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = New().Open(ctx, &sdk.OpenRequest{
		Hop:  sdk.Hop{Host: "127.0.0.1", Port: silent.Addr().(*net.TCPAddr).Port, Options: map[string]string{"config": "none"}},
		Argv: []string{"true"}, Parent: &fakeParent{}, Prompter: &fakePrompter{},
	})
	if sdk.KindOf(err) != sdk.KindDeadline {
		t.Errorf("hung handshake: %v, want deadline", err)
	}
}

// keepaliveServer runs an in-process ssh server on a loopback port that
// answers global requests when answer is true and never otherwise, and
// returns a client connected to it.
func keepaliveServer(t *testing.T, answer bool) *xssh.Client {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := xssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	scfg := &xssh.ServerConfig{NoClientAuth: true}
	scfg.AddHostKey(signer)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		sc, err := l.Accept()
		if err != nil {
			return
		}
		t.Cleanup(func() { sc.Close() })
		_, chans, reqs, err := xssh.NewServerConn(sc, scfg)
		if err != nil {
			return
		}
		go xssh.DiscardRequests(nil)
		go func() {
			for ch := range chans {
				_ = ch.Reject(xssh.Prohibited, "no")
			}
		}()
		// Unanswered requests are simply dropped: the client waits.
		for r := range reqs {
			if answer {
				_ = r.Reply(false, nil)
			}
		}
	}()
	cc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	c, chans, reqs, err := xssh.NewClientConn(cc, "pipe", &xssh.ClientConfig{User: "u", HostKeyCallback: xssh.InsecureIgnoreHostKey()})
	if err != nil {
		t.Fatal(err)
	}
	return xssh.NewClient(c, chans, reqs)
}

func TestKeepaliveClosesDeadServer(t *testing.T) {
	c := keepaliveServer(t, false)
	done := make(chan struct{})
	go func() { keepalive(c, 20*time.Millisecond, 3, hclog.NewNullLogger()); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("keepalive did not close a connection whose server stopped answering")
	}
	if _, _, err := c.SendRequest("x", true, nil); err == nil {
		t.Error("the client is still open")
	}
}

func TestKeepaliveKeepsLiveServer(t *testing.T) {
	c := keepaliveServer(t, true)
	done := make(chan struct{})
	go func() { keepalive(c, 20*time.Millisecond, 2, hclog.NewNullLogger()); close(done) }()
	select {
	case <-done:
		t.Fatal("keepalive closed a connection whose server answers")
	case <-time.After(300 * time.Millisecond):
	}
	c.Close()
	<-done
}
