package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sporehq/spore/core"
	"github.com/sporehq/spore/internal/testenv"
)

// binDir holds bin/spore and the plugins built for this run.
var binDir string

func TestMain(m *testing.M) {
	// testenv.Main exits without returning, so a run cannot remove its own
	// directory: each run removes those that earlier runs left.
	old, _ := filepath.Glob(filepath.Join(os.TempDir(), "spore-e2e-bin-*"))
	for _, d := range old {
		if st, err := os.Stat(d); err == nil && time.Since(st.ModTime()) > time.Hour {
			os.RemoveAll(d)
		}
	}
	dir, err := os.MkdirTemp("", "spore-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Chmod(dir, 0o755) // the test users run these binaries too
	binDir = dir
	build := func(out, pkg string) {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, out), pkg)
		if b, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, b)
			os.Exit(1)
		}
	}
	build("spore", "../cmd/host")
	ents, _ := os.ReadDir("../plugins")
	for _, e := range ents {
		main := filepath.Join("..", "plugins", e.Name(), "cmd", "spore-transport-"+e.Name())
		if _, err := os.Stat(main); err == nil {
			build("spore-transport-"+e.Name(), "./"+main)
		}
	}
	testenv.Main(m)
}

// result is what one spore invocation did.
type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// spore runs bin/spore with args and no stdin, with a 2-minute limit.
func spore(t testing.TB, args ...string) result {
	t.Helper()
	return sporeIn(t, nil, nil, args...)
}

// sporeIn runs bin/spore with stdin and extra environment.
func sporeIn(t testing.TB, stdin []byte, env []string, args ...string) result {
	t.Helper()
	return runSpore(t, "", stdin, env, args...)
}

// runSpore runs bin/spore with args — as user through runuser, from /, in
// a session of its own with no controlling terminal, when user is set —
// with stdin, extra environment and a 2-minute limit.
func runSpore(t testing.TB, user string, stdin []byte, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	argv := append([]string{filepath.Join(binDir, "spore")}, args...)
	what := fmt.Sprintf("spore %v", args)
	if user != "" {
		argv = append([]string{"runuser", "-u", user, "--"}, argv...)
		what += " as " + user
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	if user != "" {
		cmd.Dir = "/"
		// No controlling terminal: spore never asks the person running
		// the tests.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	t0 := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), took: time.Since(t0)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("%s: %v", what, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s hung (killed after 2 minutes); stderr: %s", what, r.stderr)
	}
	return r
}

// newHost returns a core.Host using the plugins built for this run.
func newHost(t testing.TB) *core.Host {
	t.Helper()
	h := core.NewHost(core.Options{PluginDirs: []string{binDir}})
	t.Cleanup(func() { h.Close() })
	return h
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// oneLine reports whether s is a single line starting "spore: ".
func oneLine(s string) bool {
	s = strings.TrimRight(s, "\n")
	return strings.HasPrefix(s, "spore: ") && !strings.Contains(s, "\n")
}
