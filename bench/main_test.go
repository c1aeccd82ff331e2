package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/sporehq/spore/core"
	"github.com/sporehq/spore/internal/testenv"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "spore-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Chmod(dir, 0o755)
	binDir = dir
	ents, _ := os.ReadDir("../plugins")
	for _, e := range ents {
		main := "./" + filepath.Join("..", "plugins", e.Name(), "cmd", "spore-transport-"+e.Name())
		if out, err := exec.Command("go", "build", "-o", dir+"/", main).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", main, err, out)
			os.Exit(1)
		}
	}
	testenv.Main(m)
}

func newHost(b testing.TB) *core.Host {
	h := core.NewHost(core.Options{PluginDirs: []string{binDir}})
	b.Cleanup(func() { h.Close() })
	return h
}

// median runs f n times and returns the median duration.
func median(n int, f func()) time.Duration {
	ds := make([]time.Duration, n)
	for i := range ds {
		t := time.Now()
		f()
		ds[i] = time.Since(t)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[n/2]
}

// timeCommand runs argv to completion; the benchmark fails if it fails.
func timeCommand(b testing.TB, argv ...string) {
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		b.Fatalf("%v: %v\n%s", argv, err, out)
	}
}

func ctx(b testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	b.Cleanup(cancel)
	return c
}
