package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// User is a local account created for the tests.
type User struct {
	// Name is the login name, e.g. "sporetest".
	Name string
	// UID and GID are the account's numeric ids.
	UID, GID int
	// Home is the home directory (it exists and belongs to the user).
	Home string
	// Password is the account's password. It is generated once per machine
	// and kept in /var/lib/spore-test/passwords (mode 0600); it never
	// appears in any process's argv.
	Password string
	// KeyFile is the private ed25519 key (OpenSSH format, no passphrase,
	// readable by root only) that the test sshd accepts for every test user.
	// The public half is KeyFile + ".pub".
	KeyFile string
	// PublicKey is the public key as an authorized_keys line.
	PublicKey string
}

// Users are the test accounts. They are created once (idempotently, with
// useradd) and every one has a password and accepts the same key over the
// test sshd. Their login shell is /bin/sh.
type Users struct {
	// Test ("sporetest") is the ordinary ssh user, a member of group docker
	// when that group exists.
	Test User
	// NoPython ("sporenopy") logs in over the test sshd with
	// PATH=/nonexistent, so `python3` is "not found" for it.
	NoPython User
	// Sudo ("sporesudo") may run anything as anyone with sudo, after typing
	// its password. Its sudo lecture is off and its credentials are never
	// cached (timestamp_timeout=0), so sudo asks every time.
	Sudo User
	// NoPasswd ("sporenopw") may run anything as anyone with sudo, without a
	// password (NOPASSWD: ALL).
	NoPasswd User
	// Deny ("sporedeny") has a password and no sudoers entry.
	Deny User
	// App ("sporeapp") is a plain account to become with sudo -u.
	App User
}

// All returns every test user, in a fixed order.
func (u *Users) All() []User {
	return []User{u.Test, u.NoPython, u.Sudo, u.NoPasswd, u.Deny, u.App}
}

// The test user names.
const (
	userTest     = "sporetest"
	userNoPython = "sporenopy"
	userSudo     = "sporesudo"
	userNoPasswd = "sporenopw"
	userDeny     = "sporedeny"
	userApp      = "sporeapp"
)

var testUserNames = []string{userTest, userNoPython, userSudo, userNoPasswd, userDeny, userApp}

// SudoersFile is the sudoers drop-in that gives the sudo test users their
// rights.
const SudoersFile = "/etc/sudoers.d/spore-test"

const sudoersContent = `# Written by spore's internal/testenv for its test users. Safe to delete.
Defaults:sporesudo, sporedeny lecture=never, timestamp_timeout=0
sporesudo ALL=(ALL:ALL) ALL
sporenopw ALL=(ALL:ALL) NOPASSWD: ALL
`

var (
	usersMu  sync.Mutex
	usersVal *Users
	usersErr error
)

// TestUsers creates the test users if needed and returns them. It needs
// root, useradd, chpasswd and ssh-keygen. When sudo is installed it also
// writes SudoersFile (validated with visudo); tests that use sudo should call
// Sudo, which checks that.
func TestUsers(t testing.TB) *Users {
	t.Helper()
	Root(t)
	for _, tool := range []string{"useradd", "usermod", "chpasswd", "ssh-keygen"} {
		_, err := exec.LookPath(tool)
		Need(t, tool, err == nil, tool+" not on PATH (apt-get install passwd openssh-client)")
	}
	usersMu.Lock()
	defer usersMu.Unlock()
	if usersVal == nil && usersErr == nil {
		start := time.Now()
		usersVal, usersErr = setupUsers()
		if usersErr == nil {
			t.Logf("testenv: test users ready in %v", time.Since(start).Round(time.Millisecond))
		}
	}
	if usersErr != nil {
		t.Fatalf("testenv: setting up test users: %v", usersErr)
	}
	return usersVal
}

// Sudo returns the path of sudo after making sure the test users and
// SudoersFile are in place, or ends the test (see Need) when sudo is not
// installed.
func Sudo(t testing.TB) string {
	t.Helper()
	TestUsers(t)
	sudo, err := exec.LookPath("sudo")
	_, verr := exec.LookPath("visudo")
	Need(t, "sudo", err == nil && verr == nil, "sudo not installed (apt-get install sudo)")
	b, rerr := os.ReadFile(SudoersFile)
	if rerr != nil || string(b) != sudoersContent {
		t.Fatalf("testenv: %s missing or changed", SudoersFile)
	}
	return sudo
}

func setupUsers() (*Users, error) {
	unlock, err := lockFile("setup")
	if err != nil {
		return nil, err
	}
	defer unlock()

	if err := os.MkdirAll(StateDir, 0o755); err != nil {
		return nil, err
	}
	_ = os.Chmod(StateDir, 0o755)

	passwd, err := readColonFile("/etc/passwd")
	if err != nil {
		return nil, err
	}
	groups, err := readColonFile("/etc/group")
	if err != nil {
		return nil, err
	}
	for _, name := range testUserNames {
		if p, ok := passwd[name]; ok {
			if len(p) >= 7 && p[6] != "/bin/sh" {
				if _, err := command(30*time.Second, nil, "usermod", "--shell", "/bin/sh", name); err != nil {
					return nil, err
				}
			}
			continue
		}
		argv := []string{"useradd", "--create-home", "--shell", "/bin/sh", "--comment", "spore test user"}
		if _, ok := groups[name]; ok {
			argv = append(argv, "--gid", name)
		}
		argv = append(argv, name)
		if _, err := command(30*time.Second, nil, argv...); err != nil {
			return nil, err
		}
	}
	if passwd, err = readColonFile("/etc/passwd"); err != nil {
		return nil, err
	}
	if groups, err = readColonFile("/etc/group"); err != nil {
		return nil, err
	}

	// sporetest joins group docker, if there is one.
	if g, ok := groups["docker"]; ok && len(g) >= 4 && !contains(strings.Split(g[3], ","), userTest) {
		if _, err := command(30*time.Second, nil, "usermod", "--append", "--groups", "docker", userTest); err != nil {
			return nil, err
		}
	}

	accounts := map[string]User{}
	for _, name := range testUserNames {
		p := passwd[name]
		if len(p) < 7 {
			return nil, fmt.Errorf("user %s missing from /etc/passwd after useradd", name)
		}
		uid, _ := strconv.Atoi(p[2])
		gid, _ := strconv.Atoi(p[3])
		home := p[5]
		if fi, err := os.Stat(home); err != nil || !fi.IsDir() {
			if err := os.MkdirAll(home, 0o750); err != nil {
				return nil, err
			}
			if err := os.Chown(home, uid, gid); err != nil {
				return nil, err
			}
		}
		accounts[name] = User{Name: name, UID: uid, GID: gid, Home: home}
	}

	passwords, err := ensurePasswords()
	if err != nil {
		return nil, err
	}

	if _, err := exec.LookPath("visudo"); err == nil {
		if err := writeSudoers(); err != nil {
			return nil, err
		}
	}

	key, pub, err := clientKey()
	if err != nil {
		return nil, err
	}
	get := func(name string) User {
		u := accounts[name]
		u.Password = passwords[name]
		u.KeyFile = key
		u.PublicKey = pub
		return u
	}
	return &Users{
		Test:     get(userTest),
		NoPython: get(userNoPython),
		Sudo:     get(userSudo),
		NoPasswd: get(userNoPasswd),
		Deny:     get(userDeny),
		App:      get(userApp),
	}, nil
}

// ensurePasswords makes every test user's password the one recorded in
// StateDir/passwords, generating missing ones. A password is (re)set with
// chpasswd (on stdin) only when /etc/shadow no longer holds the hash recorded
// when it was last set, so concurrent test binaries agree on the passwords.
// Caller holds the setup lock.
func ensurePasswords() (map[string]string, error) {
	file := filepath.Join(StateDir, "passwords")
	type rec struct{ password, hash string }
	recs := map[string]rec{}
	if b, err := os.ReadFile(file); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.SplitN(line, ":", 3)
			if len(f) == 3 && f[1] != "" {
				recs[f[0]] = rec{f[1], f[2]}
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	shadow, err := readColonFile("/etc/shadow")
	if err != nil {
		return nil, err
	}
	var input strings.Builder
	var changed []string
	for _, name := range testUserNames {
		r := recs[name]
		if r.password == "" {
			r.password = randHex(12)
		}
		s := shadow[name]
		if len(s) < 2 || r.hash == "" || s[1] != r.hash {
			fmt.Fprintf(&input, "%s:%s\n", name, r.password)
			changed = append(changed, name)
		}
		recs[name] = r
	}
	if len(changed) > 0 {
		if _, err := command(60*time.Second, []byte(input.String()), "chpasswd"); err != nil {
			return nil, err
		}
		if shadow, err = readColonFile("/etc/shadow"); err != nil {
			return nil, err
		}
		for _, name := range changed {
			r := recs[name]
			if s := shadow[name]; len(s) >= 2 {
				r.hash = s[1]
			}
			recs[name] = r
		}
		var out strings.Builder
		names := make([]string, 0, len(recs))
		for name := range recs {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			fmt.Fprintf(&out, "%s:%s:%s\n", name, recs[name].password, recs[name].hash)
		}
		if err := writeFileAtomic(file, []byte(out.String()), 0o600); err != nil {
			return nil, err
		}
	}
	pw := map[string]string{}
	for name, r := range recs {
		pw[name] = r.password
	}
	return pw, nil
}

// writeSudoers installs SudoersFile, validated by visudo, if it differs.
func writeSudoers() error {
	if b, err := os.ReadFile(SudoersFile); err == nil && string(b) == sudoersContent {
		return nil
	}
	// sudo ignores files in sudoers.d whose name contains a dot.
	tmp := SudoersFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(sudoersContent), 0o440); err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Chmod(tmp, 0o440); err != nil {
		return err
	}
	if _, err := command(30*time.Second, nil, "visudo", "-c", "-q", "-f", tmp); err != nil {
		return err
	}
	return os.Rename(tmp, SudoersFile)
}

var (
	runDirOnce sync.Once
	runDirVal  string
	runDirErr  error
)

// runDir returns this process's state directory, StateDir/run/PID (mode
// 0711, so that sshd can read the authorized_keys file in it as the test
// user), creating it and removing those of dead processes.
func runDir() (string, error) {
	runDirOnce.Do(func() {
		base := filepath.Join(StateDir, "run")
		if err := os.MkdirAll(base, 0o711); err != nil {
			runDirErr = err
			return
		}
		_ = os.Chmod(StateDir, 0o755)
		_ = os.Chmod(base, 0o711)
		entries, _ := os.ReadDir(base)
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
				_ = os.RemoveAll(filepath.Join(base, e.Name()))
			}
		}
		dir := filepath.Join(base, strconv.Itoa(os.Getpid()))
		_ = os.RemoveAll(dir)
		if err := os.Mkdir(dir, 0o711); err != nil {
			runDirErr = err
			return
		}
		runDirErr = os.Chmod(dir, 0o711)
		runDirVal = dir
	})
	return runDirVal, runDirErr
}

// runDirPath returns this process's state directory if it was created.
func runDirPath() string {
	d, err := runDir()
	if err != nil {
		return ""
	}
	return d
}

var (
	clientKeyOnce sync.Once
	clientKeyPath string
	clientKeyPub  string
	clientKeyErr  error
)

// clientKey generates (once per process) the ed25519 key pair that the test
// sshd accepts for every test user.
func clientKey() (path, pub string, err error) {
	clientKeyOnce.Do(func() {
		dir, err := runDir()
		if err != nil {
			clientKeyErr = err
			return
		}
		path := filepath.Join(dir, "id_ed25519")
		if _, err := command(30*time.Second, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "spore-test-client", "-f", path); err != nil {
			clientKeyErr = err
			return
		}
		b, err := os.ReadFile(path + ".pub")
		if err != nil {
			clientKeyErr = err
			return
		}
		clientKeyPath, clientKeyPub = path, strings.TrimSpace(string(b))
	})
	return clientKeyPath, clientKeyPub, clientKeyErr
}

// readColonFile parses /etc/passwd-style files into name -> fields.
func readColonFile(path string) (map[string][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, ":")
		out[fields[0]] = fields
	}
	return out, sc.Err()
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := fmt.Sprintf("%s.tmp%d", path, os.Getpid())
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
