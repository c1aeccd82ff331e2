package ssh

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sporehq/spore/internal/testenv"
)

// TestEndToEnd runs the real spore CLI with this plugin as a go-plugin
// binary against the test sshd: the boot, the bytes relayed through the
// plugin, password_env, and the no-Python classification.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the spore CLI and the plugin")
	}
	srv := testenv.SSHD(t)
	py := testenv.SystemPython(t)
	bin := t.TempDir()
	for pkg, out := range map[string]string{
		"github.com/sporehq/spore/cmd/host":                            "spore",
		"github.com/sporehq/spore/plugins/ssh/cmd/spore-transport-ssh": "spore-transport-ssh",
	} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, out), pkg)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	home := t.TempDir()
	target := func(u testenv.User, opts ...string) string {
		q := url.Values{}
		q.Set("config", "none")
		q.Set("known_hosts", srv.WriteKnownHosts(t))
		q.Set("python", py)
		for i := 0; i+1 < len(opts); i += 2 {
			q.Set(opts[i], opts[i+1])
		}
		return fmt.Sprintf("ssh://%s@%s:%d?%s", u.Name, srv.Host, srv.Port, q.Encode())
	}
	spore := func(env []string, args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, "spore"), args...)
		cmd.Env = append(os.Environ(), "HOME="+home, "SSH_AUTH_SOCK=", "SPORE_PLUGIN_PATH="+bin)
		cmd.Env = append(cmd.Env, env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("spore %v: no answer within 60s; stderr:\n%s", args, stderr.String())
		}
		return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
	}

	u := srv.Users.Test
	out, errOut, code := spore(nil, "run", target(u, "identity", u.KeyFile), "--", "sh", "-c", "id -un; exit 3")
	if out != u.Name+"\n" || code != 3 {
		t.Fatalf("key auth: stdout %q exit %d, want %q exit 3; stderr:\n%s", out, code, u.Name+"\n", errOut)
	}

	out, errOut, code = spore([]string{"SPORE_E2E_PW=" + u.Password}, "run", "--batch", target(u, "password_env", "SPORE_E2E_PW"), "--", "id", "-un")
	if out != u.Name+"\n" || code != 0 {
		t.Fatalf("password_env: stdout %q exit %d; stderr:\n%s", out, code, errOut)
	}

	out, errOut, code = spore([]string{"SPORE_E2E_PW=wrong"}, "run", "--batch", target(u, "password_env", "SPORE_E2E_PW"), "--", "true")
	if code != 255 || !strings.Contains(errOut, "password_env=SPORE_E2E_PW was refused") {
		t.Errorf("wrong password: stdout %q exit %d, want 255 and the password refused; stderr:\n%s", out, code, errOut)
	}

	t.Logf("wrong password: %s", strings.TrimSpace(errOut))

	out, errOut, code = spore(nil, "ping", target(u, "identity", u.KeyFile, "jump", fmt.Sprintf("%s@%s:%d", u.Name, srv.Host, srv.Port)))
	if code != 0 || !strings.Contains(out, "auth") {
		t.Errorf("ping through a jump host: exit %d, stdout %q; stderr:\n%s", code, out, errOut)
	}
	t.Logf("ping:\n%s", out)

	nopy := srv.Users.NoPython
	out, errOut, code = spore(nil, "run", target(nopy, "identity", nopy.KeyFile, "python", "python3"), "--", "true")
	if code != 255 || !strings.Contains(errOut, "python3: not found") {
		t.Errorf("no python: stdout %q exit %d, want 255 and the shell's message; stderr:\n%s", out, code, errOut)
	}
	t.Logf("no python: %s", strings.TrimSpace(errOut))
}
