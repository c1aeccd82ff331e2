package bench

import (
	"bytes"
	"io"
	"os/exec"
	"testing"
	"time"

	"github.com/sporehq/spore/core"
	"github.com/sporehq/spore/internal/testenv"
)

// BenchmarkBootstrapLocal: local bootstrap to first reply, against the
// floor of two starts of the same interpreter (`python -c pass`), which is
// what the first stage and the re-exec'd core cost at the least.
// Goal: x-floor ≤ 1.5.
func BenchmarkBootstrapLocal(b *testing.B) {
	py := testenv.SystemPython(b)
	h := newHost(b)
	c := ctx(b)
	target := "local://?python=" + py
	// Warm up the plugin and the page cache.
	if cx, err := h.Connect(c, target); err == nil {
		cx.Close()
	} else {
		b.Fatal(err)
	}
	floor := median(21, func() { timeCommand(b, py, "-c", "pass"); timeCommand(b, py, "-c", "pass") })
	var boots []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t := time.Now()
		cx, err := h.Connect(c, target)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cx.Ping(c); err != nil {
			b.Fatal(err)
		}
		boots = append(boots, time.Since(t))
		b.StopTimer()
		cx.Close()
		b.StartTimer()
	}
	b.StopTimer()
	med := medianOf(boots)
	b.ReportMetric(float64(med.Microseconds())/1000, "boot-ms")
	b.ReportMetric(float64(floor.Microseconds())/1000, "floor-ms")
	b.ReportMetric(float64(med)/float64(floor), "x-floor")
}

func medianOf(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

func localContext(b *testing.B) (*core.Context, func()) {
	py := testenv.SystemPython(b)
	h := newHost(b)
	cx, err := h.Connect(ctx(b), "local://?python="+py)
	if err != nil {
		b.Fatal(err)
	}
	return cx, func() { cx.Close() }
}

// BenchmarkPingLocal: one request/reply round trip to a local core.
// Goal: ≤ 60 µs.
func BenchmarkPingLocal(b *testing.B) {
	cx, done := localContext(b)
	defer done()
	c := ctx(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := cx.Ping(c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/ping")
}

// BenchmarkPingPipelined: pings sent without waiting, answers collected.
// Goal: ≥ 100k pings/s.
func BenchmarkPingPipelined(b *testing.B) {
	cx, done := localContext(b)
	defer done()
	c := ctx(b)
	const batch = 1000
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := cx.PingMany(c, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "pings/s")
}

// BenchmarkCat100MB: 100 MB through a remote `cat` on a local core,
// against the same bytes through a local `cat` pipe. x-floor is the ratio
// of throughputs (1 = as fast as the pipe).
func BenchmarkCat100MB(b *testing.B) {
	cx, done := localContext(b)
	defer done()
	c := ctx(b)
	data := bytes.Repeat([]byte("0123456789abcdef"), 100<<20/16)
	floor := median(3, func() {
		cmd := exec.Command("cat")
		cmd.Stdin = bytes.NewReader(data)
		cmd.Stdout = io.Discard
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
	})
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if st, err := cx.Run(c, &core.Cmd{Argv: []string{"cat"}, Stdin: bytes.NewReader(data), Stdout: io.Discard}); err != nil || st != 0 {
			b.Fatal(st, err)
		}
	}
	per := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(len(data))/per.Seconds()/1e6, "MB/s")
	b.ReportMetric(float64(len(data))/floor.Seconds()/1e6, "floor-MB/s")
	b.ReportMetric(float64(floor)/float64(per), "x-floor")
}
