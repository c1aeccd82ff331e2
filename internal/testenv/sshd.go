package testenv

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// SSHDPath is the OpenSSH server binary that SSHD runs.
const SSHDPath = "/usr/sbin/sshd"

// SSHServer is a running OpenSSH sshd private to the tests. It listens on
// 127.0.0.1 only, has its own host keys and config, accepts the test users
// (Users) by password, keyboard-interactive and public key, and allows TCP
// forwarding (direct-tcpip, for ProxyJump). Treat it as read-only.
type SSHServer struct {
	// Host is the address it listens on, "127.0.0.1".
	Host string
	// Port is its TCP port.
	Port int
	// Addr is "127.0.0.1:PORT".
	Addr string
	// HostKeyFiles are the private host key files: ed25519 first, then
	// rsa. Each public half is the file name + ".pub".
	HostKeyFiles []string
	// HostPublicKeys are the public host keys ("ssh-ed25519 AAAA..."), in
	// the order of HostKeyFiles.
	HostPublicKeys []string
	// ConfigFile is the sshd_config the server runs with.
	ConfigFile string
	// LogFile receives sshd's log (LogLevel VERBOSE).
	LogFile string
	// Users are the accounts the server lets in.
	Users *Users
	// PID is the sshd listener's process id.
	PID int
}

var (
	sshMu   sync.Mutex
	sshKeep bool // Main: keep the shared sshd until Shutdown
	sshRefs int  // tests currently using the shared sshd
	sshCur  *sshProc

	sshLogShown = map[string]bool{} // tests that printed the log tail

	sshOptionalChecked bool
	sshOptional        []string // config lines this sshd version accepts
)

type sshProc struct {
	srv    *SSHServer
	cmd    *exec.Cmd
	exited chan struct{}
}

// SSHD returns the test binary's shared sshd, starting it if needed (about
// 0.1 s). Without Main it is stopped when the last test using it ends. It
// needs root and OpenSSH (apt-get install openssh-server).
//
// The server's sshd_config is: ListenAddress 127.0.0.1:PORT, PidFile none,
// UsePAM yes, PasswordAuthentication, KbdInteractiveAuthentication and
// PubkeyAuthentication yes, AuthorizedKeysFile holding the users' KeyFile,
// StrictModes no, AllowUsers the test users only, AllowTcpForwarding yes,
// generous MaxStartups/MaxSessions/MaxAuthTries, LogLevel VERBOSE, and for
// sporenopy SetEnv PATH=/nonexistent.
func SSHD(t testing.TB) *SSHServer {
	t.Helper()
	Root(t)
	Need(t, "sshd", isExecFile(SSHDPath), SSHDPath+" not installed (apt-get install openssh-server)")
	_, err := exec.LookPath("ssh-keygen")
	Need(t, "ssh-keygen", err == nil, "ssh-keygen not installed (apt-get install openssh-client)")
	users := TestUsers(t)

	sshMu.Lock()
	defer sshMu.Unlock()
	if sshCur != nil {
		select {
		case <-sshCur.exited:
			t.Logf("testenv: shared sshd (pid %d) had exited; restarting. Log tail:\n%s", sshCur.srv.PID, tail(sshCur.srv.LogFile, 20))
			sshCur = nil
		default:
		}
	}
	if sshCur == nil {
		start := time.Now()
		p, err := startSSHD(users)
		if err != nil {
			t.Fatalf("testenv: starting sshd: %v", err)
		}
		sshCur = p
		t.Logf("testenv: sshd listening on %s (pid %d, log %s) in %v", p.srv.Addr, p.srv.PID, p.srv.LogFile, time.Since(start).Round(time.Millisecond))
	}
	sshRefs++
	srv := sshCur.srv
	t.Cleanup(func() {
		sshMu.Lock()
		defer sshMu.Unlock()
		if t.Failed() && !sshLogShown[t.Name()] {
			sshLogShown[t.Name()] = true
			t.Logf("testenv: sshd log tail (%s):\n%s", srv.LogFile, tail(srv.LogFile, 30))
		}
		sshRefs--
		if sshRefs <= 0 && !sshKeep {
			sshRefs = 0
			stopSSHLocked()
		}
	})
	return srv
}

// KnownHostsLine returns a known_hosts line for the server's ed25519 host
// key under host (default s.Host), written as ssh writes a host with a
// non-standard port: "[127.0.0.1]:PORT ssh-ed25519 AAAA...".
func (s *SSHServer) KnownHostsLine(host string) string {
	if host == "" {
		host = s.Host
	}
	return fmt.Sprintf("[%s]:%d %s", host, s.Port, s.HostPublicKeys[0])
}

// WriteKnownHosts writes a known_hosts file into a fresh t.TempDir() with a
// KnownHostsLine for each host (default s.Host) and returns its path. It
// holds the ed25519 key only: an SSH client must prefer the host key
// algorithms known_hosts has (as OpenSSH does), or it may be offered the rsa
// key and reject it.
func (s *SSHServer) WriteKnownHosts(t testing.TB, hosts ...string) string {
	t.Helper()
	if len(hosts) == 0 {
		hosts = []string{s.Host}
	}
	var b strings.Builder
	for _, h := range hosts {
		b.WriteString(s.KnownHostsLine(h))
		b.WriteByte('\n')
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return path
}

// SSHCommand returns an exec.Cmd running the system ssh client as u against
// the server, authenticating with u.KeyFile only, in batch mode, with strict
// host key checking against a file from WriteKnownHosts and no ssh_config.
// remote is the remote command (ssh joins its words with spaces; the user's
// shell parses them).
func (s *SSHServer) SSHCommand(t testing.TB, u User, remote ...string) *exec.Cmd {
	t.Helper()
	args := []string{
		"-F", "/dev/null",
		"-i", u.KeyFile,
		"-o", "IdentitiesOnly=yes",
		"-o", "IdentityAgent=none",
		"-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + s.WriteKnownHosts(t),
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "ConnectTimeout=10",
		"-p", strconv.Itoa(s.Port),
		"-l", u.Name,
		s.Host,
		"--",
	}
	return exec.Command("ssh", append(args, remote...)...)
}

func startSSHD(users *Users) (*sshProc, error) {
	dir, err := runDir()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, err
	}
	keys := []string{filepath.Join(dir, "ssh_host_ed25519_key"), filepath.Join(dir, "ssh_host_rsa_key")}
	var pubs []string
	for i, typ := range []string{"ed25519", "rsa"} {
		if _, err := os.Stat(keys[i]); err != nil {
			argv := []string{"ssh-keygen", "-q", "-N", "", "-C", "spore-test-host", "-t", typ, "-f", keys[i]}
			if typ == "rsa" {
				argv = append(argv, "-b", "2048")
			}
			if _, err := command(60*time.Second, nil, argv...); err != nil {
				return nil, err
			}
		}
		b, err := os.ReadFile(keys[i] + ".pub")
		if err != nil {
			return nil, err
		}
		f := strings.Fields(string(b))
		if len(f) < 2 {
			return nil, fmt.Errorf("%s.pub: unexpected content", keys[i])
		}
		pubs = append(pubs, f[0]+" "+f[1])
	}
	authKeys := filepath.Join(dir, "authorized_keys")
	if err := writeFileAtomic(authKeys, []byte(users.Test.PublicKey+"\n"), 0o644); err != nil {
		return nil, err
	}
	logFile := filepath.Join(dir, "sshd.log")

	var lastErr error
	for attempt := 0; attempt < 4; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		cfg := filepath.Join(dir, fmt.Sprintf("sshd_config.%d", port))
		if err := writeSSHDConfig(cfg, port, keys, authKeys, users); err != nil {
			return nil, err
		}
		p, err := runSSHD(cfg, logFile, port)
		if err == nil {
			p.srv.HostKeyFiles = keys
			p.srv.HostPublicKeys = pubs
			p.srv.Users = users
			return p, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	return nil, lastErr
}

func writeSSHDConfig(path string, port int, hostKeys []string, authKeys string, users *Users) error {
	var names []string
	for _, u := range users.All() {
		names = append(names, u.Name)
	}
	base := fmt.Sprintf(`# spore internal/testenv: a private sshd for the tests, not the system one.
ListenAddress 127.0.0.1:%d
AddressFamily inet
HostKey %s
HostKey %s
PidFile none
UsePAM yes
PasswordAuthentication yes
PermitEmptyPasswords no
KbdInteractiveAuthentication yes
PubkeyAuthentication yes
AuthorizedKeysFile %s
StrictModes no
PermitRootLogin no
AllowUsers %s
AllowTcpForwarding yes
AllowAgentForwarding yes
AllowStreamLocalForwarding yes
PermitTTY yes
X11Forwarding no
UseDNS no
PrintMotd no
PrintLastLog no
MaxStartups 200:30:400
MaxSessions 200
MaxAuthTries 20
LoginGraceTime 60
ClientAliveInterval 0
LogLevel VERBOSE
Subsystem sftp internal-sftp
`, port, hostKeys[0], hostKeys[1], authKeys, strings.Join(names, " "))
	match := fmt.Sprintf("Match User %s\n\tSetEnv PATH=/nonexistent\n", userNoPython)

	if !sshOptionalChecked {
		// Newer OpenSSH (9.8+) locks out a source address after failed
		// logins; tests fail logins on purpose, from 127.0.0.1.
		for _, opt := range []string{"PerSourcePenalties no"} {
			if err := os.WriteFile(path, []byte(base+opt+"\n"+match), 0o600); err != nil {
				return err
			}
			if _, err := command(30*time.Second, nil, SSHDPath, "-t", "-f", path); err == nil {
				sshOptional = append(sshOptional, opt)
			}
		}
		sshOptionalChecked = true
	}
	var opt string
	for _, o := range sshOptional {
		opt += o + "\n"
	}
	content := base + opt + match
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return err
	}
	if _, err := command(30*time.Second, nil, SSHDPath, "-t", "-f", path); err != nil {
		return fmt.Errorf("sshd rejects its config %s: %v", path, err)
	}
	return nil
}

func runSSHD(cfg, logFile string, port int) (*sshProc, error) {
	logf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "---- testenv: starting sshd on 127.0.0.1:%d at %s\n", port, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(SSHDPath, "-D", "-e", "-f", cfg)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = childAttr()
	// A parent-death signal fires when the thread that forked exits; start
	// from a fresh goroutine so that is never a thread locked by a test.
	errc := make(chan error, 1)
	go func() { errc <- cmd.Start() }()
	if err := <-errc; err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	p := &sshProc{
		srv:    &SSHServer{Host: "127.0.0.1", Port: port, Addr: addr, ConfigFile: cfg, LogFile: logFile, PID: cmd.Process.Pid},
		cmd:    cmd,
		exited: exited,
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			return nil, fmt.Errorf("sshd exited at start (%v): %s", cmd.ProcessState, oneLine(tail(logFile, 5)))
		default:
		}
		if banner, err := readBanner(addr); err == nil {
			if strings.HasPrefix(banner, "SSH-2.0-") {
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			stopProc(p)
			return nil, fmt.Errorf("sshd on %s did not answer within 15s: %s", addr, oneLine(tail(logFile, 5)))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readBanner(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// stopSSHLocked stops the shared sshd; sshMu is held.
func stopSSHLocked() {
	if sshCur == nil {
		return
	}
	stopProc(sshCur)
	sshCur = nil
}

// stopProc ends the sshd we started and its process group (its
// per-connection children), first with SIGTERM, then SIGKILL.
func stopProc(p *sshProc) {
	pid := p.cmd.Process.Pid
	select {
	case <-p.exited:
		return
	default:
	}
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-p.exited
	}
}
