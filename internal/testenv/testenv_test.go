package testenv_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/sporehq/spore/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// fakeTB records what Need does instead of ending the test.
type fakeTB struct {
	testing.TB
	skipped, fataled string
}

func (f *fakeTB) Helper()                           {}
func (f *fakeTB) Skip(args ...any)                  { f.skipped = fmt.Sprint(args...) }
func (f *fakeTB) Skipf(format string, args ...any)  { f.skipped = fmt.Sprintf(format, args...) }
func (f *fakeTB) Fatalf(format string, args ...any) { f.fataled = fmt.Sprintf(format, args...) }

func TestNeed(t *testing.T) {
	t.Setenv("CI", "")
	f := &fakeTB{}
	testenv.Need(f, "thing", true, "unused")
	if f.skipped != "" || f.fataled != "" {
		t.Fatalf("ok=true ended the test: %+v", f)
	}
	testenv.Need(f, "thing", false, "it is\nmissing")
	if f.fataled != "" || !strings.Contains(f.skipped, "need thing: it is; missing") {
		t.Fatalf("outside CI: skipped=%q fataled=%q", f.skipped, f.fataled)
	}

	t.Setenv("CI", "true")
	f = &fakeTB{}
	testenv.Need(f, "thing", false, "missing")
	if f.skipped != "" || !strings.Contains(f.fataled, "need thing: missing") {
		t.Fatalf("under CI: skipped=%q fataled=%q", f.skipped, f.fataled)
	}
}

func TestPythons(t *testing.T) {
	pys := testenv.Pythons(t)
	seen := map[string]bool{}
	for _, py := range pys {
		seen[py.Name] = true
		t.Run(py.Name, func(t *testing.T) {
			if strings.Contains(py.Path, "/shims/") {
				t.Fatalf("%s is a pyenv shim", py.Path)
			}
			out, err := exec.Command(py.Path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])").CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v: %s", py.Path, err, out)
			}
			t.Logf("%s -> %s", py.Path, strings.TrimSpace(string(out)))
		})
	}
	if !seen["system"] {
		t.Errorf("/usr/bin/python3 not listed: %v", pys)
	}
	if _, err := exec.LookPath("pypy3"); err == nil && !seen["pypy3"] {
		t.Errorf("pypy3 is on PATH but not listed: %v", pys)
	}
}

func TestSystemPython(t *testing.T) {
	p := testenv.SystemPython(t)
	fi, err := os.Stat(p)
	if err != nil || fi.Mode()&0o005 != 0o005 {
		t.Fatalf("%s not readable and executable by all: %v %v", p, fi.Mode(), err)
	}
}

func runSSH(t *testing.T, srv *testenv.SSHServer, u testenv.User, stdin string, remote ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := srv.SSHCommand(t, u, remote...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return strings.TrimSpace(o.String()), strings.TrimSpace(e.String()), err
}

func TestSSHDKeyLogin(t *testing.T) {
	srv := testenv.SSHD(t)
	if srv2 := testenv.SSHD(t); srv2 != srv {
		t.Errorf("second SSHD call started another server: %s vs %s", srv2.Addr, srv.Addr)
	}
	if want := fmt.Sprintf("[127.0.0.1]:%d ssh-ed25519 ", srv.Port); !strings.HasPrefix(srv.KnownHostsLine(""), want) {
		t.Errorf("KnownHostsLine = %q, want prefix %q", srv.KnownHostsLine(""), want)
	}
	for _, u := range srv.Users.All() {
		// sporenopy has PATH=/nonexistent.
		out, errOut, err := runSSH(t, srv, u, "", "/usr/bin/id", "-un")
		if err != nil || out != u.Name {
			t.Errorf("ssh %s id -un: %q, %v: %s", u.Name, out, err, errOut)
		}
	}
	// The ordinary user finds Debian's python3 on PATH and is in group docker.
	out, errOut, err := runSSH(t, srv, srv.Users.Test, "", "python3", "-c", "'import sys; print(sys.executable)'")
	if err != nil || out != "/usr/bin/python3" {
		t.Errorf("sporetest python3: %q, %v: %s", out, err, errOut)
	}
	if _, err := exec.Command("getent", "group", "docker").Output(); err == nil {
		out, _, err := runSSH(t, srv, srv.Users.Test, "", "id", "-nG")
		if err != nil || !strings.Contains(" "+out+" ", " docker ") {
			t.Errorf("sporetest groups %q (%v), want docker", out, err)
		}
	}
}

func TestSSHDNoPython(t *testing.T) {
	srv := testenv.SSHD(t)
	out, errOut, err := runSSH(t, srv, srv.Users.NoPython, "", "python3", "-c", "pass")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 127 || !strings.Contains(errOut, "python3: not found") {
		t.Fatalf("sporenopy python3: out %q err %v stderr %q; want exit 127, not found", out, err, errOut)
	}
	// Its shell works otherwise.
	out, errOut, err = runSSH(t, srv, srv.Users.NoPython, "", "echo", "$PATH")
	if err != nil || out != "/nonexistent" {
		t.Fatalf("sporenopy PATH: %q, %v: %s", out, err, errOut)
	}
}

func clientConfig(t *testing.T, srv *testenv.SSHServer, user string, auth ...ssh.AuthMethod) *ssh.ClientConfig {
	t.Helper()
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(srv.HostPublicKeys[0]))
	if err != nil {
		t.Fatal(err)
	}
	return &ssh.ClientConfig{
		User:              user,
		Auth:              auth,
		HostKeyCallback:   ssh.FixedHostKey(hostKey),
		HostKeyAlgorithms: []string{hostKey.Type()},
		Timeout:           10 * time.Second,
	}
}

func TestSSHDPasswordAndForwarding(t *testing.T) {
	srv := testenv.SSHD(t)
	u := srv.Users.Test
	kbd := ssh.KeyboardInteractive(func(name, instruction string, questions []string, echos []bool) ([]string, error) {
		answers := make([]string, len(questions))
		for i := range questions {
			answers[i] = u.Password
		}
		return answers, nil
	})
	for _, tc := range []struct {
		name string
		auth ssh.AuthMethod
	}{{"password", ssh.Password(u.Password)}, {"keyboard-interactive", kbd}} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ssh.Dial("tcp", srv.Addr, clientConfig(t, srv, u.Name, tc.auth))
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer c.Close()
			s, err := c.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			out, err := s.Output("id -un")
			if err != nil || strings.TrimSpace(string(out)) != u.Name {
				t.Fatalf("id -un: %q %v", out, err)
			}
			// direct-tcpip, as ProxyJump uses it: reach the sshd through itself.
			conn, err := c.Dial("tcp", srv.Addr)
			if err != nil {
				t.Fatalf("direct-tcpip: %v", err)
			}
			defer conn.Close()
			banner, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil || !strings.HasPrefix(banner, "SSH-2.0-") {
				t.Fatalf("direct-tcpip banner %q, %v", banner, err)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		_, err := ssh.Dial("tcp", srv.Addr, clientConfig(t, srv, u.Name, ssh.Password(u.Password+"x")))
		if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
			t.Fatalf("wrong password: %v", err)
		}
	})
	t.Run("publickey", func(t *testing.T) {
		key, err := os.ReadFile(u.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		signer, err := ssh.ParsePrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ssh.Dial("tcp", srv.Addr, clientConfig(t, srv, srv.Users.Sudo.Name, ssh.PublicKeys(signer)))
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		c.Close()
	})
}

func TestSudoUsers(t *testing.T) {
	sudo := testenv.Sudo(t)
	srv := testenv.SSHD(t)
	us := srv.Users
	for _, tc := range []struct {
		user testenv.User
		want string
	}{
		{us.Sudo, "(ALL : ALL) ALL"},
		{us.NoPasswd, "(ALL : ALL) NOPASSWD: ALL"},
		{us.Deny, "is not allowed to run sudo"},
	} {
		out, _ := exec.Command(sudo, "-n", "-l", "-U", tc.user.Name).CombinedOutput()
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("sudo -l -U %s: %q, want %q", tc.user.Name, out, tc.want)
		}
	}
	// Real sudo, as each user over ssh; the password goes on stdin.
	out, errOut, err := runSSH(t, srv, us.Sudo, us.Sudo.Password+"\n", "sudo", "-S", "-p", "''", "-u", us.App.Name, "id", "-un")
	if err != nil || out != us.App.Name {
		t.Errorf("sporesudo sudo -u sporeapp: %q, %v: %s", out, err, errOut)
	}
	_, errOut, err = runSSH(t, srv, us.Sudo, "wrong\n", "sudo", "-S", "-p", "''", "true")
	if err == nil || !strings.Contains(errOut, "incorrect password") {
		t.Errorf("sporesudo with a wrong password: %v: %s", err, errOut)
	}
	out, errOut, err = runSSH(t, srv, us.NoPasswd, "", "sudo", "-n", "id", "-un")
	if err != nil || out != "root" {
		t.Errorf("sporenopw sudo -n: %q, %v: %s", out, err, errOut)
	}
	_, errOut, err = runSSH(t, srv, us.Deny, us.Deny.Password+"\n", "sudo", "-S", "-p", "''", "true")
	if err == nil || !strings.Contains(errOut, "not in the sudoers file") {
		t.Errorf("sporedeny sudo: %v: %s", err, errOut)
	}
}

func TestDocker(t *testing.T) {
	d := testenv.Docker(t)
	py := d.PythonImage(t)
	nopy := d.NoPythonImage(t)

	out, err := exec.Command("docker", "run", "--rm", py, "python3", "-c", "import zlib, select, json, ssl, hashlib, ctypes, sqlite3, pwd, os; print(pwd.getpwuid(1000).pw_name, os.access('/tmp', os.W_OK))").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "app True" {
		t.Errorf("python image: %q, %v", out, err)
	}
	out, err = exec.Command("docker", "run", "--rm", nopy, "python3", "-c", "pass").CombinedOutput()
	if err == nil {
		t.Errorf("nopython image runs python3: %q", out)
	}

	name := d.Container(t, py)
	cmd := exec.Command("docker", "exec", "-i", "-u", "app", name, "sh", "-c", "id -un; cd && pwd; python3 -c 'import sys; print(sys.stdin.read())'")
	cmd.Stdin = strings.NewReader("hello")
	out, err = cmd.CombinedOutput()
	if want := "app\n/home/app\nhello"; err != nil || strings.TrimSpace(string(out)) != want {
		t.Errorf("docker exec in %s: %q, %v; want %q", name, out, err, want)
	}
	name2 := d.Container(t, nopy)
	out, err = exec.Command("docker", "exec", name2, "sh", "-c", "python3 -c pass").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not found") {
		t.Errorf("python3 in nopython container: %q, %v", out, err)
	}
}
