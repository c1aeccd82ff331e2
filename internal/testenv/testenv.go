package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// StateDir holds the state shared by all test binaries on the machine (the
// test users' passwords, lock files) and, under run/, per-process state.
const StateDir = "/var/lib/spore-test"

// InCI reports whether the tests run in CI (environment CI=true or CI=1),
// where a missing service is a failure rather than a reason to skip.
func InCI() bool {
	v := strings.TrimSpace(os.Getenv("CI"))
	return strings.EqualFold(v, "true") || v == "1"
}

// Need ends the test when ok is false: with t.Fatalf under CI=true (a missing
// service is a failure in CI), otherwise with t.Skip. what names the missing
// thing ("root", "sshd", "docker"); reason says why, on one line.
func Need(t testing.TB, what string, ok bool, reason string) {
	t.Helper()
	if ok {
		return
	}
	reason = oneLine(reason)
	if InCI() {
		t.Fatalf("testenv: need %s: %s (CI=true, so this is a failure)", what, reason)
		return
	}
	t.Skipf("testenv: need %s: %s", what, reason)
}

// Root ends the test (see Need) unless it runs as root.
func Root(t testing.TB) {
	t.Helper()
	Need(t, "root", os.Geteuid() == 0, fmt.Sprintf("running as uid %d; these tests create users and start daemons", os.Geteuid()))
}

// Python is one Python interpreter installed on this machine.
type Python struct {
	// Name identifies the interpreter: the pyenv version ("2.7.18",
	// "3.12.1"), "pypy3", or "system". It is usable as a subtest name.
	Name string
	// Path is the absolute path of the real interpreter binary, never a
	// pyenv shim.
	Path string
}

// SystemPythonPath is Debian's python3, which every user can run.
const SystemPythonPath = "/usr/bin/python3"

// SystemPython returns the path of Debian's python3 (/usr/bin/python3),
// which every user (the test users included) can run, or ends the test (see
// Need) when it is missing.
func SystemPython(t testing.TB) string {
	t.Helper()
	fi, err := os.Stat(SystemPythonPath)
	Need(t, "python3", err == nil && fi.Mode()&0o001 != 0, fmt.Sprintf("%s missing or not executable by all users (apt-get install python3)", SystemPythonPath))
	return SystemPythonPath
}

var pyVersionDir = regexp.MustCompile(`^(?:[a-z]+-)?(\d+)\.(\d+)`)

// RequiredPythons are the interpreter series spore supports; Pythons
// fails under CI when one is missing, and skips outside it.
var RequiredPythons = []string{"2.7", "3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "pypy3"}

// Pythons returns every Python interpreter on this machine: each pyenv
// version's versioned binary ($(pyenv root)/versions/V/bin/pythonX.Y, or
// pypy3 for a PyPy version), pypy3 if it is on PATH (resolved to its real
// path), and /usr/bin/python3 (Name "system"). Duplicates (the same real
// file) are listed once. It ends the test (see Need) if it finds none.
func Pythons(t testing.TB) []Python {
	t.Helper()
	var out []Python
	seen := map[string]bool{}
	add := func(name, path string) {
		real, err := filepath.EvalSymlinks(path)
		if err != nil || seen[real] {
			return
		}
		if fi, err := os.Stat(real); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return
		}
		seen[real] = true
		out = append(out, Python{Name: name, Path: path})
	}

	root := pyenvRoot()
	if root != "" {
		dirs, _ := filepath.Glob(filepath.Join(root, "versions", "*"))
		sort.Slice(dirs, func(i, j int) bool { return versionLess(filepath.Base(dirs[i]), filepath.Base(dirs[j])) })
		for _, dir := range dirs {
			if p := versionedPython(dir); p != "" {
				add(filepath.Base(dir), p)
			}
		}
	}
	if p, err := exec.LookPath("pypy3"); err == nil {
		if abs, err := filepath.Abs(p); err == nil && !strings.Contains(abs, string(filepath.Separator)+"shims"+string(filepath.Separator)) {
			if real, err := filepath.EvalSymlinks(abs); err == nil {
				add("pypy3", real)
			}
		}
	}
	add("system", SystemPythonPath)

	Need(t, "python", len(out) > 0, "no Python interpreter found (pyenv, pypy3, /usr/bin/python3)")
	// Every supported series must be there: under CI a missing one fails.
	for _, series := range RequiredPythons {
		found := false
		for _, p := range out {
			if p.Name == series || strings.HasPrefix(p.Name, series+".") {
				found = true
			}
		}
		Need(t, "python "+series, found, "no "+series+" interpreter (pyenv versions or apt's pypy3)")
	}
	names := make([]string, len(out))
	for i, p := range out {
		names[i] = p.Name
	}
	t.Logf("testenv: pythons: %s", strings.Join(names, " "))
	return out
}

// pyenvRoot returns `pyenv root`, else $PYENV_ROOT, else ~/.pyenv if it
// exists, else "".
func pyenvRoot() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pyenv, err := exec.LookPath("pyenv")
	if err != nil {
		if home, herr := os.UserHomeDir(); herr == nil {
			pyenv = filepath.Join(home, ".pyenv", "bin", "pyenv")
		}
	}
	if pyenv != "" {
		if out, err := exec.CommandContext(ctx, pyenv, "root").Output(); err == nil {
			if r := strings.TrimSpace(string(out)); r != "" {
				if fi, err := os.Stat(r); err == nil && fi.IsDir() {
					return r
				}
			}
		}
	}
	for _, r := range []string{os.Getenv("PYENV_ROOT"), homeJoin(".pyenv")} {
		if r == "" {
			continue
		}
		if fi, err := os.Stat(r); err == nil && fi.IsDir() {
			return r
		}
	}
	return ""
}

var digits = regexp.MustCompile(`\d+|\D+`)

// versionLess orders "3.9.18" before "3.10.13": digit runs compare as
// numbers.
func versionLess(a, b string) bool {
	pa, pb := digits.FindAllString(a, -1), digits.FindAllString(b, -1)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if pa[i] == pb[i] {
			continue
		}
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		if ea == nil && eb == nil {
			return na < nb
		}
		return pa[i] < pb[i]
	}
	return len(pa) < len(pb)
}

func homeJoin(p string) string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, p)
}

// versionedPython picks the versioned interpreter in a pyenv version dir:
// bin/pythonX.Y for CPython, bin/pypy3 (or pypyX.Y) for PyPy.
func versionedPython(dir string) string {
	base := filepath.Base(dir)
	bin := filepath.Join(dir, "bin")
	var candidates []string
	if strings.HasPrefix(base, "pypy") {
		candidates = append(candidates, "pypy3", "pypy")
		if m := pyVersionDir.FindStringSubmatch(strings.TrimPrefix(base, "pypy")); m != nil {
			candidates = append([]string{"pypy" + m[1] + "." + m[2]}, candidates...)
		}
	} else if m := pyVersionDir.FindStringSubmatch(base); m != nil {
		candidates = append(candidates, "python"+m[1]+"."+m[2])
	}
	for _, c := range candidates {
		if p := filepath.Join(bin, c); isExecFile(p) {
			return p
		}
	}
	// Unusual layout: any bin/pythonX.Y.
	matches, _ := filepath.Glob(filepath.Join(bin, "python[0-9].*[0-9]"))
	sort.Strings(matches)
	for _, p := range matches {
		if isExecFile(p) {
			return p
		}
	}
	return ""
}

func isExecFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// Main runs the tests of a package with one sshd kept for the whole run,
// then stops everything testenv started for this process (except dockerd)
// and exits. Use it as the body of TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	sshMu.Lock()
	sshKeep = true
	sshMu.Unlock()
	code := m.Run()
	Shutdown()
	os.Exit(code)
}

// Shutdown stops the shared sshd and removes this process's state directory.
// Main calls it; call it yourself from a TestMain that does not use Main.
func Shutdown() {
	sshMu.Lock()
	sshKeep = false
	stopSSHLocked()
	sshMu.Unlock()
	if dir := runDirPath(); dir != "" {
		_ = os.RemoveAll(dir)
	}
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\r", " ")
	return strings.ReplaceAll(s, "\n", "; ")
}

// randHex returns n random bytes, hex encoded.
func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// command runs argv with a timeout and returns its stdout; the error carries
// stderr.
func command(timeout time.Duration, stdin []byte, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		if ctx.Err() != nil {
			return stdout.String(), fmt.Errorf("%s: timed out after %v: %s", strings.Join(argv, " "), timeout, msg)
		}
		return stdout.String(), fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, msg)
	}
	return stdout.String(), nil
}

// lockFile takes an exclusive flock on a named lock shared by every process
// on the machine, and returns the function that releases it.
func lockFile(name string) (func(), error) {
	dir := StateDir
	if os.Geteuid() != 0 {
		dir = filepath.Join(os.TempDir(), fmt.Sprintf("spore-test-%d", os.Geteuid()))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, name+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
