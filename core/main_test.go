package core

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// pluginDir holds the transport plugins built for this test run.
var pluginDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "spore-core-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pluginDir = dir
	out, err := exec.Command("go", "build", "-o", dir+"/", "../plugins/local/cmd/spore-transport-local").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building plugins: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func newTestHost(t testing.TB) *Host {
	t.Helper()
	h := NewHost(Options{PluginDirs: []string{pluginDir}})
	t.Cleanup(func() { h.Close() })
	return h
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
