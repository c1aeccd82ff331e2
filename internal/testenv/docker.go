package testenv

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DockerEngine is a Docker engine that answers `docker version`.
type DockerEngine struct {
	// Version is the engine's (server's) version.
	Version string
	// DaemonLog is the log file of the dockerd this process started, or ""
	// when the engine was already running.
	DaemonLog string

	mu     sync.Mutex
	images map[string]string
}

var (
	dockerMu  sync.Mutex
	dockerVal *DockerEngine
)

// Docker returns the machine's Docker engine. If `docker version` does not
// answer and the test runs as root, it starts dockerd in the background
// (--host unix:///var/run/docker.sock, logging to a temp file) and waits up
// to 20 s for it. That dockerd is left running when the tests end, for other
// test binaries. A missing engine ends the test (see Need).
func Docker(t testing.TB) *DockerEngine {
	t.Helper()
	_, err := exec.LookPath("docker")
	Need(t, "docker", err == nil, "docker CLI not installed (apt-get install docker.io)")

	dockerMu.Lock()
	defer dockerMu.Unlock()
	if dockerVal != nil {
		return dockerVal
	}
	v, verr := dockerVersion()
	if verr == nil {
		dockerVal = &DockerEngine{Version: v}
		t.Logf("testenv: docker engine %s", v)
		return dockerVal
	}
	_, derr := exec.LookPath("dockerd")
	if os.Geteuid() != 0 || derr != nil {
		Need(t, "docker", false, fmt.Sprintf("docker engine does not answer and cannot be started here (%v)", verr))
		return nil
	}
	start := time.Now()
	logPath, v, err := startDockerd()
	Need(t, "docker", err == nil, fmt.Sprintf("starting dockerd: %v", err))
	if logPath != "" {
		t.Logf("testenv: started dockerd %s in %v (log %s); it keeps running after the tests", v, time.Since(start).Round(time.Millisecond), logPath)
	}
	dockerVal = &DockerEngine{Version: v, DaemonLog: logPath}
	return dockerVal
}

func dockerVersion() (string, error) {
	out, err := command(15*time.Second, nil, "docker", "version", "--format", "{{.Server.Version}}")
	if err != nil {
		return "", err
	}
	v := strings.TrimSpace(out)
	if v == "" {
		return "", fmt.Errorf("docker version: no server version")
	}
	return v, nil
}

// startDockerd starts dockerd (unless another process did meanwhile) and
// waits for it to answer. It returns the log path ("" if someone else's
// dockerd answered) and the engine version.
func startDockerd() (logPath, version string, err error) {
	unlock, err := lockFile("dockerd")
	if err != nil {
		return "", "", err
	}
	defer unlock()
	if v, err := dockerVersion(); err == nil {
		return "", v, nil
	}
	logf, err := os.CreateTemp("", "spore-dockerd-*.log")
	if err != nil {
		return "", "", err
	}
	defer logf.Close()
	cmd := exec.Command("dockerd", "--host", "unix:///var/run/docker.sock")
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Dir = "/"
	// Its own session: it must outlive this test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return "", "", err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if v, err := dockerVersion(); err == nil {
			return logf.Name(), v, nil
		}
		select {
		case <-exited:
			return logf.Name(), "", fmt.Errorf("dockerd exited (%v): %s", cmd.ProcessState, oneLine(tail(logf.Name(), 5)))
		default:
		}
		if time.Now().After(deadline) {
			return logf.Name(), "", fmt.Errorf("dockerd (pid %d) did not answer within 20s; log %s: %s", cmd.Process.Pid, logf.Name(), oneLine(tail(logf.Name(), 5)))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Image repositories built by PythonImage and NoPythonImage. Each build is
// tagged with a hash of its inputs, and :latest. Builds from older inputs
// are left in place (another test binary may still use them).
const (
	PythonImageRepo   = "spore-test/python"
	NoPythonImageRepo = "spore-test/nopython"
)

// imageBuilderVersion is part of every image's input hash: bump it when the
// way images are assembled changes.
const imageBuilderVersion = "spore-testenv-image-1"

// PythonImage returns a local image (spore-test/python:HASH, also tagged
// :latest) with busybox and Debian's CPython (python3, from /usr/bin/python3
// and its stdlib and shared libraries), an /etc/passwd with root and app
// (uid 1000, home /home/app) and a /tmp. It is built without any registry by
// `docker import` of a root filesystem assembled from the host's files, and
// only when no image with the same input hash exists.
func (d *DockerEngine) PythonImage(t testing.TB) string {
	t.Helper()
	return d.image(t, PythonImageRepo, true)
}

// NoPythonImage returns a local image like PythonImage but without Python:
// busybox only (spore-test/nopython:HASH, also tagged :latest).
func (d *DockerEngine) NoPythonImage(t testing.TB) string {
	t.Helper()
	return d.image(t, NoPythonImageRepo, false)
}

// Container starts a detached container of image running `sleep 3600`,
// named spore-test-RANDOM, and returns its name. It is removed (docker rm -f)
// when the test ends; --rm removes it if the test binary dies first.
func (d *DockerEngine) Container(t testing.TB, image string) string {
	t.Helper()
	name := "spore-test-" + randHex(4)
	start := time.Now()
	if _, err := command(60*time.Second, nil, "docker", "run", "-d", "--rm", "--name", name, "--label", "org.sporehq.spore-test=1", image, "sleep", "3600"); err != nil {
		t.Fatalf("testenv: starting container: %v", err)
	}
	t.Logf("testenv: container %s (%s) started in %v", name, image, time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if _, err := command(60*time.Second, nil, "docker", "rm", "-f", name); err != nil && !strings.Contains(err.Error(), "No such container") {
			t.Errorf("testenv: removing container %s: %v", name, err)
		}
	})
	return name
}

func (d *DockerEngine) image(t testing.TB, repo string, withPython bool) string {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if ref, ok := d.images[repo]; ok {
		return ref
	}
	_, err := exec.LookPath("busybox")
	Need(t, "busybox", err == nil, "busybox not installed (apt-get install busybox-static)")
	if withPython {
		SystemPython(t)
	}
	start := time.Now()
	fsys, err := assembleRootfs(withPython)
	if err != nil {
		t.Fatalf("testenv: assembling %s root filesystem: %v", repo, err)
	}
	for _, m := range fsys.missing {
		t.Logf("testenv: %s: shared library not found on the host, left out: %s", repo, m)
	}
	sum, err := fsys.hash()
	if err != nil {
		t.Fatalf("testenv: hashing %s inputs: %v", repo, err)
	}
	ref := repo + ":" + sum[:16]

	unlock, err := lockFile("image-" + path.Base(repo))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	defer unlock()
	if _, err := command(30*time.Second, nil, "docker", "image", "inspect", "--format", "{{.Id}}", ref); err == nil {
		if _, err := command(30*time.Second, nil, "docker", "tag", ref, repo+":latest"); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		t.Logf("testenv: image %s up to date (inputs hashed in %v)", ref, time.Since(start).Round(time.Millisecond))
		if d.images == nil {
			d.images = map[string]string{}
		}
		d.images[repo] = ref
		return ref
	}

	if err := fsys.dockerImport(ref, sum); err != nil {
		t.Fatalf("testenv: building %s: %v", ref, err)
	}
	var check []string
	if withPython {
		check = []string{"python3", "-c", "import zlib, select, json; print(1)"}
	} else {
		check = []string{"sh", "-c", "id -un; command -v python3 || echo no-python"}
	}
	out, err := command(60*time.Second, nil, append([]string{"docker", "run", "--rm", ref}, check...)...)
	want := "1"
	if !withPython {
		want = "root\nno-python"
	}
	if err != nil || strings.TrimSpace(out) != want {
		_, _ = command(60*time.Second, nil, "docker", "rmi", "-f", ref)
		t.Fatalf("testenv: image %s does not work: %q, %v", ref, out, err)
	}
	if _, err := command(30*time.Second, nil, "docker", "tag", ref, repo+":latest"); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Logf("testenv: built image %s (%d files) in %v", ref, len(fsys.entries), time.Since(start).Round(time.Millisecond))
	if d.images == nil {
		d.images = map[string]string{}
	}
	d.images[repo] = ref
	return ref
}

// rootfs is an image's root filesystem, described as tar entries whose
// regular files come from host files.
type rootfs struct {
	entries map[string]*tarEntry
	missing []string
}

type tarEntry struct {
	name     string // relative path, no leading or trailing slash
	typeflag byte
	mode     int64
	uid, gid int
	link     string // symlink target
	src      string // host file holding a regular file's content
	data     []byte // or the content itself
}

func (r *rootfs) add(e *tarEntry) {
	e.name = strings.Trim(path.Clean("/"+e.name), "/")
	if e.name == "" {
		return
	}
	for dir := path.Dir(e.name); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if _, ok := r.entries[dir]; !ok {
			r.entries[dir] = &tarEntry{name: dir, typeflag: tar.TypeDir, mode: 0o755}
		}
	}
	r.entries[e.name] = e
}

func (r *rootfs) dir(name string, mode int64, uid, gid int) {
	r.add(&tarEntry{name: name, typeflag: tar.TypeDir, mode: mode, uid: uid, gid: gid})
}

func (r *rootfs) symlink(name, target string) {
	if _, ok := r.entries[strings.Trim(name, "/")]; ok {
		return
	}
	r.add(&tarEntry{name: name, typeflag: tar.TypeSymlink, mode: 0o777, link: target})
}

func (r *rootfs) data(name string, data string, mode int64) {
	r.add(&tarEntry{name: name, typeflag: tar.TypeReg, mode: mode, data: []byte(data)})
}

// file adds host file src (symlinks followed) at name, keeping its mode.
func (r *rootfs) file(name, src string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", src)
	}
	r.add(&tarEntry{name: name, typeflag: tar.TypeReg, mode: int64(fi.Mode().Perm()), src: src})
	return nil
}

// libs adds the shared libraries (and the dynamic loader) that the given
// host binaries need, at the paths ldd reports.
func (r *rootfs) libs(bins ...string) error {
	if len(bins) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ldd", bins...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	_ = cmd.Run() // non-zero when one of them is static; the output is what counts
	if stdout.Len() == 0 && ctx.Err() != nil {
		return fmt.Errorf("ldd: %v", ctx.Err())
	}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "\t") {
			continue
		}
		line = strings.TrimSpace(line)
		var lib string
		if name, rest, ok := strings.Cut(line, "=>"); ok {
			rest = strings.TrimSpace(rest)
			if strings.HasPrefix(rest, "not found") {
				r.missing = append(r.missing, strings.TrimSpace(name))
				continue
			}
			lib = strings.Fields(rest)[0]
		} else if strings.HasPrefix(line, "/") {
			lib = strings.Fields(line)[0]
		}
		if !strings.HasPrefix(lib, "/") {
			continue // linux-vdso.so.1, "statically linked"
		}
		if _, ok := r.entries[strings.TrimPrefix(lib, "/")]; ok {
			continue
		}
		if err := r.file(lib, lib); err != nil {
			return err
		}
	}
	return sc.Err()
}

const imageEtcPasswd = `root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
`

const imageEtcGroup = `root:x:0:
app:x:1000:
nogroup:x:65534:
`

// skipStdlibDirs are left out of the image's Python stdlib.
var skipStdlibDirs = map[string]bool{
	"test": true, "tests": true, "idlelib": true, "tkinter": true,
	"turtledemo": true, "ensurepip": true, "__pycache__": true,
}

// assembleRootfs describes an image: busybox (a static binary, with a
// symlink per applet), /etc, /tmp, /home/app and, withPython, Debian's
// python3 with its stdlib and every shared library it and its extension
// modules load.
func assembleRootfs(withPython bool) (*rootfs, error) {
	r := &rootfs{entries: map[string]*tarEntry{}}
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc", "dev", "proc", "sys", "var", "home"} {
		r.dir(d, 0o755, 0, 0)
	}
	r.dir("tmp", 0o1777, 0, 0)
	r.dir("var/tmp", 0o1777, 0, 0)
	r.dir("root", 0o700, 0, 0)
	r.dir("home/app", 0o755, 1000, 1000)
	r.data("etc/passwd", imageEtcPasswd, 0o644)
	r.data("etc/group", imageEtcGroup, 0o644)
	r.data("etc/hostname", "spore-test\n", 0o644)

	busybox, err := exec.LookPath("busybox")
	if err != nil {
		return nil, err
	}
	if err := r.file("bin/busybox", busybox); err != nil {
		return nil, err
	}
	var bins []string
	bins = append(bins, busybox)
	out, err := command(30*time.Second, nil, busybox, "--list-full")
	if err != nil {
		// Older busybox: applets under /bin.
		if out, err = command(30*time.Second, nil, busybox, "--list"); err != nil {
			return nil, err
		}
		var full []string
		for _, a := range strings.Fields(out) {
			full = append(full, "bin/"+a)
		}
		out = strings.Join(full, "\n")
	}
	for _, applet := range strings.Fields(out) {
		if path.Base(applet) == "busybox" || strings.Contains(applet, "python") {
			continue
		}
		r.symlink(applet, "/bin/busybox")
	}

	if withPython {
		real, err := filepath.EvalSymlinks(SystemPythonPath)
		if err != nil {
			return nil, err
		}
		ver := filepath.Base(real) // python3.11
		if err := r.file("usr/bin/"+ver, real); err != nil {
			return nil, err
		}
		r.symlink("usr/bin/python3", ver)
		bins = append(bins, real)
		stdlib := filepath.Join("/usr/lib", ver)
		err = filepath.WalkDir(stdlib, func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := de.Name()
			if de.IsDir() {
				if p != stdlib && (skipStdlibDirs[name] || strings.HasPrefix(name, "config-")) {
					return filepath.SkipDir
				}
				return nil
			}
			fi, err := os.Stat(p) // follows symlinks (sitecustomize.py -> /etc/...)
			if err != nil || !fi.Mode().IsRegular() {
				return nil // dangling or special: leave out
			}
			if strings.HasSuffix(name, ".pyc") {
				return nil
			}
			if err := r.file(strings.TrimPrefix(p, "/"), p); err != nil {
				return err
			}
			if strings.HasSuffix(name, ".so") {
				bins = append(bins, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if err := r.libs(bins...); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *rootfs) sorted() []*tarEntry {
	names := make([]string, 0, len(r.entries))
	for n := range r.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]*tarEntry, len(names))
	for i, n := range names {
		out[i] = r.entries[n]
	}
	return out
}

// hash returns the hex sha256 of everything that goes into the image: the
// builder version, every entry's metadata and every file's content.
func (r *rootfs) hash() (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", imageBuilderVersion)
	buf := make([]byte, 256*1024)
	for _, e := range r.sorted() {
		fmt.Fprintf(h, "%s\x00%c\x00%o\x00%d\x00%d\x00%s\x00", e.name, e.typeflag, e.mode, e.uid, e.gid, e.link)
		switch {
		case e.src != "":
			f, err := os.Open(e.src)
			if err != nil {
				return "", err
			}
			n, err := io.CopyBuffer(h, f, buf)
			f.Close()
			if err != nil {
				return "", err
			}
			fmt.Fprintf(h, "\x00%d\n", n)
		default:
			h.Write(e.data)
			fmt.Fprintf(h, "\x00%d\n", len(e.data))
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeTar writes the root filesystem as a tar stream.
func (r *rootfs) writeTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	mtime := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, e := range r.sorted() {
		hdr := &tar.Header{
			Name:     e.name,
			Typeflag: e.typeflag,
			Mode:     e.mode,
			Uid:      e.uid,
			Gid:      e.gid,
			Linkname: e.link,
			ModTime:  mtime,
			Format:   tar.FormatPAX,
		}
		var content io.Reader
		var f *os.File
		switch e.typeflag {
		case tar.TypeDir:
			hdr.Name += "/"
		case tar.TypeReg:
			if e.src != "" {
				var err error
				if f, err = os.Open(e.src); err != nil {
					return err
				}
				fi, err := f.Stat()
				if err != nil {
					f.Close()
					return err
				}
				hdr.Size = fi.Size()
				content = f
			} else {
				hdr.Size = int64(len(e.data))
				content = bytes.NewReader(e.data)
			}
		}
		err := tw.WriteHeader(hdr)
		if err == nil && content != nil {
			if _, cerr := io.CopyN(tw, content, hdr.Size); cerr != nil {
				err = fmt.Errorf("%s: %v", e.name, cerr)
			}
		}
		if f != nil {
			f.Close()
		}
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// dockerImport streams the root filesystem into `docker import`.
func (r *rootfs) dockerImport(ref, sum string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "import",
		"--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"--change", `CMD ["/bin/sh"]`,
		"--change", "LABEL org.sporehq.spore-test.inputs="+sum,
		"--message", "spore internal/testenv",
		"-", ref)
	pr, pw := io.Pipe()
	cmd.Stdin = pr
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		return err
	}
	werr := make(chan error, 1)
	go func() {
		err := r.writeTar(pw)
		pw.CloseWithError(err)
		werr <- err
	}()
	err := cmd.Wait()
	pr.CloseWithError(io.ErrClosedPipe) // unblock the writer if docker quit early
	if terr := <-werr; terr != nil && err == nil {
		return terr
	}
	if err != nil {
		return fmt.Errorf("docker import: %v: %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}
