package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sporehq/spore/internal/testenv"
)

// sudoEnv returns the test users after making sure sudo and its sudoers
// drop-in are in place, and the interpreter every test user can run.
func sudoEnv(t *testing.T) (*testenv.Users, string) {
	t.Helper()
	testenv.Root(t)
	testenv.Sudo(t)
	_, err := exec.LookPath("runuser")
	testenv.Need(t, "runuser", err == nil, "runuser not on PATH (apt-get install util-linux)")
	return testenv.TestUsers(t), testenv.SystemPython(t)
}

// sporeAs runs bin/spore as user (through runuser, from /, with no
// controlling terminal), with extra environment, no stdin and a 2-minute
// limit.
func sporeAs(t *testing.T, user string, env []string, args ...string) result {
	t.Helper()
	return runSpore(t, user, nil, env, args...)
}

// wantFailure checks a failed spore run: exit 255, one line on stderr
// containing every one of want, within limit.
func wantFailure(t *testing.T, r result, limit time.Duration, want ...string) {
	t.Helper()
	if r.code != 255 {
		t.Errorf("exit status %d, want 255; stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if !oneLine(r.stderr) {
		t.Errorf("stderr is not one line: %q", r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr %q does not mention %q", r.stderr, w)
		}
	}
	if r.took > limit {
		t.Errorf("took %v, want under %v", r.took.Round(time.Millisecond), limit)
	}
}

func TestSudoAsRoot(t *testing.T) {
	users, _ := sudoEnv(t)
	r := spore(t, "run", "sudo://root", "--", "id", "-u")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "0" {
		t.Fatalf("sudo://root: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	r = spore(t, "run", "sudo://"+users.App.Name+"?login=true", "--", "sh", "-c", "id -u; pwd")
	want := fmt.Sprintf("%d\n%s", users.App.UID, users.App.Home)
	if r.code != 0 || strings.TrimSpace(r.stdout) != want {
		t.Fatalf("login=true: exit %d stdout %q (want %q) stderr %q", r.code, r.stdout, want, r.stderr)
	}
	r = spore(t, "run", "sudo://nosuchuser", "--", "true")
	wantFailure(t, r, 10*time.Second, "no such user", "nosuchuser")
	r = spore(t, "run", "sudo://root?bogus=1", "--", "true")
	wantFailure(t, r, 10*time.Second, "unknown option bogus")
}

func TestSudoPassword(t *testing.T) {
	users, py := sudoEnv(t)
	u := users.Sudo
	target := "sudo://root?python=" + py + "&password_env=SPORE_TEST_PW"
	t.Run("right", func(t *testing.T) {
		r := sporeAs(t, u.Name, []string{"SPORE_TEST_PW=" + u.Password}, "run", target, "--", "id", "-u")
		if r.code != 0 || strings.TrimSpace(r.stdout) != "0" {
			t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("wrong", func(t *testing.T) {
		r := sporeAs(t, u.Name, []string{"SPORE_TEST_PW=not-" + u.Password}, "run", target, "--", "id", "-u")
		wantFailure(t, r, 10*time.Second, "incorrect password", "sudo://root")
		if strings.Contains(r.stderr, u.Password) {
			t.Error("the password appears in the error")
		}
	})
	t.Run("batch-no-password", func(t *testing.T) {
		r := sporeAs(t, u.Name, nil, "--batch", "run", "sudo://root?python="+py, "--", "id", "-u")
		wantFailure(t, r, 5*time.Second, "password_env")
	})
	t.Run("no-terminal-no-password", func(t *testing.T) {
		// runuser gives spore no controlling terminal: it cannot ask.
		r := sporeAs(t, u.Name, nil, "run", "sudo://root?python="+py, "--", "id", "-u")
		wantFailure(t, r, 5*time.Second, "password")
	})
}

func TestSudoNoPasswd(t *testing.T) {
	users, py := sudoEnv(t)
	r := sporeAs(t, users.NoPasswd.Name, nil, "--batch", "run", "sudo://root?python="+py, "--", "id", "-u")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "0" {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestSudoNotAllowed(t *testing.T) {
	users, py := sudoEnv(t)
	u := users.Deny
	r := sporeAs(t, u.Name, []string{"SPORE_TEST_PW=" + u.Password}, "run", "sudo://root?python="+py+"&password_env=SPORE_TEST_PW", "--", "id", "-u")
	wantFailure(t, r, 10*time.Second, "not allowed", "sudoers")
}

func TestSudoChain(t *testing.T) {
	users, py := sudoEnv(t)
	app := users.App
	want := strconv.Itoa(app.UID)
	t.Run("root", func(t *testing.T) {
		// python=auto: the sudo://APP hop first tries root's interpreter,
		// which APP may not be able to run, then python3.
		r := spore(t, "run", "local://,sudo://root,sudo://"+app.Name, "--", "id", "-u")
		if r.code != 0 || strings.TrimSpace(r.stdout) != want {
			t.Fatalf("exit %d stdout %q (want %s) stderr %q", r.code, r.stdout, want, r.stderr)
		}
	})
	t.Run("password", func(t *testing.T) {
		u := users.Sudo
		target := "local://?python=" + py + ",sudo://root?password_env=SPORE_TEST_PW,sudo://" + app.Name
		r := sporeAs(t, u.Name, []string{"SPORE_TEST_PW=" + u.Password}, "run", target, "--", "id", "-u")
		if r.code != 0 || strings.TrimSpace(r.stdout) != want {
			t.Fatalf("exit %d stdout %q (want %s) stderr %q", r.code, r.stdout, want, r.stderr)
		}
	})
}

// TestSudoSecretNotExposed keeps a sudo connection up and looks at every
// process started since the test began: none but spore itself (which was
// given the variable) may have the password in its argv or environment.
func TestSudoSecretNotExposed(t *testing.T) {
	users, py := sudoEnv(t)
	u := users.Sudo
	before := pids()
	marker := "spore-secret-scan-" + strconv.Itoa(os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "runuser", "-u", u.Name, "--", filepath.Join(binDir, "spore"), "run",
		"sudo://root?python="+py+"&password_env=SPORE_TEST_PW", "--", "sh", "-c", "sleep 5; : "+marker)
	cmd.Env = append(os.Environ(), "SPORE_TEST_PW="+u.Password)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	// Wait for the remote command: the connection is then up.
	deadline := time.Now().Add(20 * time.Second)
	for !running(marker) {
		if time.Now().After(deadline) {
			t.Fatalf("the sudo connection did not come up; stderr %q", errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Exempt: runuser and spore, which hold the variable by design.
	exempt := map[int]bool{cmd.Process.Pid: true}
	for pid := range pids() {
		if ppid(pid) == cmd.Process.Pid {
			exempt[pid] = true
		}
	}
	scanned := 0
	var names []string
	for pid := range pids() {
		if before[pid] || exempt[pid] {
			continue
		}
		for _, f := range []string{"cmdline", "environ"} {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
			if err != nil {
				continue
			}
			scanned++
			if f == "cmdline" {
				names = append(names, comm(pid))
			}
			if bytes.Contains(b, []byte(u.Password)) {
				t.Errorf("process %d (%s) has the password in /proc/%d/%s", pid, comm(pid), pid, f)
			}
		}
	}
	t.Logf("scanned %d processes: %s", len(names), strings.Join(names, " "))
	if scanned < 6 { // plugin, sudo, python, sh/sleep: two files each
		t.Errorf("scanned only %d files; the processes were not found", scanned)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("spore: %v; stderr %q", err, errb.String())
	}
}

func pids() map[int]bool {
	out := map[int]bool{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			out[n] = true
		}
	}
	return out
}

// running reports whether the remote sh -c '... marker' runs (spore's
// own argv holds the marker too).
func running(marker string) bool {
	for pid := range pids() {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if bytes.HasPrefix(b, []byte("sh\x00-c\x00")) && bytes.Contains(b, []byte(marker)) {
			return true
		}
	}
	return false
}

func comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}
