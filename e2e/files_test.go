package e2e

import (
	"bytes"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sporehq/spore/internal/testenv"
)

func randomFile(t *testing.T, dir string, size int) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	p := filepath.Join(dir, "src.bin")
	if err := os.WriteFile(p, data, 0o640); err != nil {
		t.Fatal(err)
	}
	return p, data
}

func TestPutGetRoundTrip(t *testing.T) {
	target := "local://?python=" + testenv.SystemPython(t)
	src, data := randomFile(t, t.TempDir(), 5<<20+17)
	remoteDir := t.TempDir()
	dst := filepath.Join(remoteDir, "copy.bin")
	if r := spore(t, "put", target, src, dst); r.code != 0 {
		t.Fatalf("put: %d %s", r.code, r.stderr)
	}
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("put changed the bytes (%v)", err)
	}
	if st, _ := os.Stat(dst); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want the source's 0640", st.Mode().Perm())
	}
	// --mode, and a directory as the destination.
	if r := spore(t, "put", "--mode", "600", target, src, remoteDir+"/"); r.code != 0 {
		t.Fatalf("put to a directory: %d %s", r.code, r.stderr)
	}
	if st, err := os.Stat(filepath.Join(remoteDir, "src.bin")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("put into a directory: %v %v", st, err)
	}
	back := filepath.Join(t.TempDir(), "back.bin")
	if r := spore(t, "get", target, dst, back); r.code != 0 {
		t.Fatalf("get: %d %s", r.code, r.stderr)
	}
	if got, _ := os.ReadFile(back); !bytes.Equal(got, data) {
		t.Fatal("get changed the bytes")
	}
	assertNoTempFiles(t, remoteDir)
	assertNoTempFiles(t, filepath.Dir(back))
}

func TestFileErrorsAreClean(t *testing.T) {
	target := "local://?python=" + testenv.SystemPython(t)
	dir := t.TempDir()
	src, _ := randomFile(t, dir, 1000)
	for _, args := range [][]string{
		{"put", target, src, "/nonexistent-dir-xyz/file"},
		{"get", target, "/nonexistent-file-xyz", filepath.Join(dir, "out")},
		{"put", target, filepath.Join(dir, "missing-local"), filepath.Join(dir, "x")},
	} {
		r := spore(t, args...)
		if r.code != 255 || !oneLine(r.stderr) {
			t.Errorf("%v: exit %d stderr %q, want 255 and one line", args[:1], r.code, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
		t.Error("a failed get left a local file")
	}
	assertNoTempFiles(t, dir)
}

// A put that runs out of disk space fails cleanly and leaves the old file
// as it was and no temporary file behind.
func TestPutOnFullDisk(t *testing.T) {
	testenv.Root(t)
	target := "local://?python=" + testenv.SystemPython(t)
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt).CombinedOutput(); err != nil {
		testenv.Need(t, "tmpfs", false, "cannot mount a tmpfs: "+strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { _ = exec.Command("umount", mnt).Run() })
	old := filepath.Join(mnt, "data")
	if err := os.WriteFile(old, []byte("old contents\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src, _ := randomFile(t, t.TempDir(), 4<<20)
	r := spore(t, "put", target, src, old)
	if r.code != 255 || !oneLine(r.stderr) || !strings.Contains(r.stderr, "No space left") {
		t.Fatalf("exit %d stderr %q, want 255 and one line about space", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(old); string(b) != "old contents\n" {
		t.Fatalf("the old file was changed: %q", b)
	}
	assertNoTempFiles(t, mnt)
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".spore") {
			t.Errorf("temporary file left behind: %s", filepath.Join(dir, e.Name()))
		}
	}
}
