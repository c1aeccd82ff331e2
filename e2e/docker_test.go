package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sporehq/spore/core"
	"github.com/sporehq/spore/internal/testenv"
	"github.com/sporehq/spore/sdk"
)

// dockerContainer starts a container of the python (or no-python) test
// image and returns its name.
func dockerContainer(t *testing.T, python bool) string {
	t.Helper()
	d := testenv.Docker(t)
	img := d.NoPythonImage(t)
	if python {
		img = d.PythonImage(t)
	}
	return d.Container(t, img)
}

func dockerCLI(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// wantFail checks a spore run that failed before booting: exit 255 and
// one line on stderr containing every one of want.
func wantFail(t *testing.T, r result, want ...string) {
	t.Helper()
	if r.code != 255 || !oneLine(r.stderr) {
		t.Errorf("exit %d, stderr %q; want 255 and one line", r.code, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr %q does not contain %q", r.stderr, w)
		}
	}
}

func TestDockerExec(t *testing.T) {
	t.Parallel()
	c := dockerContainer(t, true)
	r := spore(t, "run", "docker://"+c, "--", "cat", "/etc/hostname")
	if r.code != 0 || strings.TrimSpace(r.stdout) == "" {
		t.Errorf("cat /etc/hostname: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = spore(t, "run", "docker://"+c, "--", "sh", "-c", "echo out; echo err >&2; exit 3")
	if r.code != 3 || r.stdout != "out\n" || r.stderr != "err\n" {
		t.Errorf("exit 3: got exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = spore(t, "run", "docker://"+c, "--", "true")
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Errorf("true: got exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	t.Logf("spore run docker://%s -- true took %v", c, r.took)
}

func TestDockerCat50MB(t *testing.T) {
	t.Parallel()
	c := dockerContainer(t, true)
	data := make([]byte, 50<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	ctx := testCtx(t, 2*time.Minute)
	cx, err := newHost(t).Connect(ctx, "docker://"+c)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	var n countWriter
	var stderr bytes.Buffer
	t0 := time.Now()
	code, err := cx.Run(ctx, &core.Cmd{Argv: []string{"cat"}, Stdin: bytes.NewReader(data), Stdout: teeWriter{h, &n}, Stderr: &stderr})
	took := time.Since(t0)
	if err != nil || code != 0 {
		t.Fatalf("cat: exit %d, %v; stderr %q", code, err, stderr.String())
	}
	if n != countWriter(len(data)) || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("got %d bytes, sha256 %x; sent %d bytes, sha256 %x", n, h.Sum(nil), len(data), want)
	}
	t.Logf("50 MB through remote cat in %v (%.0f MB/s each way)", took.Round(time.Millisecond), 50/took.Seconds())
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

type teeWriter struct {
	a, b interface{ Write([]byte) (int, error) }
}

func (w teeWriter) Write(p []byte) (int, error) {
	if _, err := w.a.Write(p); err != nil {
		return 0, err
	}
	return w.b.Write(p)
}

func TestDockerUserWorkdirEnv(t *testing.T) {
	t.Parallel()
	c := dockerContainer(t, true)
	target := "docker://" + c + "?user=app&workdir=/home/app&env=" + url.QueryEscape("GREETING=hi,LIST=a,b")
	r := spore(t, "run", target, "--", "sh", "-c", `id -un; pwd; echo "$GREETING|$LIST"`)
	if r.code != 0 || r.stdout != "app\n/home/app\nhi|a,b\n" {
		t.Errorf("got exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = spore(t, "run", "docker://app@"+c+"?workdir=/tmp", "--", "sh", "-c", "id -un; pwd")
	if r.code != 0 || r.stdout != "app\n/tmp\n" {
		t.Errorf("docker://app@C: got exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = spore(t, "run", "docker://"+c, "--", "sh", "-c", "id -un; pwd")
	if r.code != 0 || r.stdout != "root\n/\n" {
		t.Errorf("defaults: got exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestDockerPythonAuto(t *testing.T) {
	t.Parallel()
	c := dockerContainer(t, true)
	ctx := testCtx(t, time.Minute)
	h := newHost(t)
	for _, target := range []string{"docker://" + c + "?python=auto", "docker://" + c + "?python=/usr/bin/python3"} {
		cx, err := h.Connect(ctx, target)
		if err != nil {
			t.Errorf("%s: %v", target, err)
			continue
		}
		f := cx.Facts()
		if !strings.HasPrefix(f.Python, "3.") || f.User != "root" || f.Hostname == "" {
			t.Errorf("%s: facts %+v", target, f)
		}
		cx.Close()
	}
	r := spore(t, "py", "docker://"+c+"?user=app", "-c", "import os; result = os.getuid()")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "1000" {
		t.Errorf("spore py: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestDockerNoPython(t *testing.T) {
	t.Parallel()
	c := dockerContainer(t, false)
	r := spore(t, "run", "docker://"+c, "--", "true")
	wantFail(t, r, "no Python", "python3, python, python2, platform-python")
	if r.took > 20*time.Second {
		t.Errorf("took %v", r.took)
	}
	_, err := newHost(t).Connect(testCtx(t, time.Minute), "docker://"+c)
	var se *sdk.Error
	if !errors.As(err, &se) || se.Kind != sdk.KindNoPython || se.Detail["tried"] != "python3,python,python2,platform-python" {
		t.Errorf("Connect: %v (%#v), want no-python having tried 4 interpreters", err, se)
	}
	r = spore(t, "run", "docker://"+c+"?python=/opt/py/bin/python3", "--", "true")
	wantFail(t, r, "no Python interpreter", `"/opt/py/bin/python3"`)
}

func TestDockerNoSuchContainer(t *testing.T) {
	t.Parallel()
	testenv.Docker(t)
	name := "spore-test-missing-" + fmt.Sprint(time.Now().UnixNano())
	r := spore(t, "run", "docker://"+name, "--", "true")
	wantFail(t, r, "no such container", name)
	_, err := newHost(t).Connect(testCtx(t, time.Minute), "docker://"+name)
	if sdk.KindOf(err) != sdk.KindNoSuchContainer {
		t.Errorf("Connect: %v, want no-such-container", err)
	}
}

func TestDockerStopped(t *testing.T) {
	t.Parallel()
	d := testenv.Docker(t)
	img := d.PythonImage(t)
	name := "spore-test-stopped-" + fmt.Sprint(time.Now().UnixNano())
	// Not testenv's Container: that one is --rm, and would vanish when stopped.
	dockerCLI(t, "run", "-d", "--name", name, "--label", "org.sporehq.spore-test=1", img, "sleep", "3600")
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", name).Run() })
	dockerCLI(t, "stop", "-t", "0", name)
	r := spore(t, "run", "docker://"+name, "--", "true")
	wantFail(t, r, "is not running", "docker start")
	_, err := newHost(t).Connect(testCtx(t, time.Minute), "docker://"+name)
	if sdk.KindOf(err) != sdk.KindNotRunning {
		t.Errorf("Connect: %v, want not-running", err)
	}
}

func TestDockerBadOptions(t *testing.T) {
	t.Parallel()
	c := dockerContainer(t, true)
	for _, tc := range []struct {
		opts string
		kind sdk.Kind
		want []string
	}{
		{"user=nosuchuser", sdk.KindBadTarget, []string{`no user "nosuchuser"`, "?user="}},
		{"workdir=/nonexistent", sdk.KindBadTarget, []string{`workdir "/nonexistent"`, "?workdir="}},
		{"docker=/nonexistent/docker", sdk.KindUnavailable, []string{`docker CLI "/nonexistent/docker" not found`}},
		{"host=unix:///nonexistent.sock", sdk.KindUnavailable, []string{"cannot connect to the Docker daemon at unix:///nonexistent.sock"}},
		{"env=oops", sdk.KindBadTarget, []string{"KEY=VAL"}},
		{"bogus=1", sdk.KindBadTarget, []string{"unknown option bogus"}},
	} {
		target := "docker://" + c + "?" + tc.opts
		r := spore(t, "run", target, "--", "true")
		wantFail(t, r, tc.want...)
		if _, err := newHost(t).Connect(testCtx(t, time.Minute), target); sdk.KindOf(err) != tc.kind {
			t.Errorf("%s: Connect: %v, want %s", tc.opts, err, tc.kind)
		}
	}
}

func TestDockerRemovedMidSession(t *testing.T) {
	t.Parallel()
	c := dockerContainer(t, true)
	ctx := testCtx(t, time.Minute)
	cx, err := newHost(t).Connect(ctx, "docker://"+c)
	if err != nil {
		t.Fatal(err)
	}
	if code, err := cx.Run(ctx, &core.Cmd{Argv: []string{"true"}}); code != 0 || err != nil {
		t.Fatalf("true: %d, %v", code, err)
	}
	dockerCLI(t, "rm", "-f", c)
	t0 := time.Now()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	code, err := cx.Run(rctx, &core.Cmd{Argv: []string{"sleep", "20"}})
	took := time.Since(t0)
	switch k := sdk.KindOf(err); {
	case rctx.Err() != nil:
		t.Fatalf("Run hung after the container was removed (%v, %v)", code, err)
	case k != sdk.KindParentLost && k != sdk.KindClosed:
		t.Errorf("Run after docker rm -f: exit %d, %v (%s); want parent-lost", code, err, k)
	}
	if took > 10*time.Second {
		t.Errorf("the error took %v", took)
	}
	select {
	case <-cx.Done():
	case <-time.After(5 * time.Second):
		t.Errorf("context not done after the container was removed")
	}
	t.Logf("after docker rm -f: %v in %v", err, took.Round(time.Millisecond))
}

func TestDockerOverSSH(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(filepath.Join(binDir, "spore-transport-ssh")); err != nil {
		t.Skip("plugins/ssh/cmd/spore-transport-ssh not built (the ssh transport is not there yet)")
	}
	c := dockerContainer(t, true)
	srv := testenv.SSHD(t)
	u := srv.Users.Test
	ssh := fmt.Sprintf("ssh://%s@%s:%d?config=none&identity=%s&known_hosts=%s",
		u.Name, srv.Host, srv.Port, url.QueryEscape(u.KeyFile), url.QueryEscape(srv.WriteKnownHosts(t)))
	r := spore(t, "run", ssh+",docker://"+c+"?user=app&workdir=/tmp", "--", "sh", "-c", "id -un; pwd; exit 3")
	if r.code != 3 || r.stdout != "app\n/tmp\n" {
		t.Errorf("ssh,docker: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = spore(t, "run", ssh+",docker://spore-test-missing-x", "--", "true")
	wantFail(t, r, "no such container")

	ctx := testCtx(t, 2*time.Minute)
	cx, err := newHost(t).Connect(ctx, ssh+",docker://"+c)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 8<<20)
	_, _ = rand.Read(data)
	var out bytes.Buffer
	if code, err := cx.Run(ctx, &core.Cmd{Argv: []string{"cat"}, Stdin: bytes.NewReader(data), Stdout: &out}); code != 0 || err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Errorf("cat over ssh,docker: exit %d, %v, %d of %d bytes back", code, err, out.Len(), len(data))
	}
}
