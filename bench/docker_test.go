package bench

import (
	"testing"
	"time"

	"github.com/sporehq/spore/internal/testenv"
)

// BenchmarkBootstrapDocker: docker bootstrap to first reply (Connect +
// Ping through the docker plugin: `docker exec -i C python3 ...`, two
// interpreter starts inside the container) against `docker exec -i C true`
// on the same container, sampled between the boots.
func BenchmarkBootstrapDocker(b *testing.B) {
	d := testenv.Docker(b)
	c := d.Container(b, d.PythonImage(b))
	h := newHost(b)
	cx := ctx(b)
	target := "docker://" + c + "?python=python3"
	if first, err := h.Connect(cx, target); err == nil {
		first.Close()
	} else {
		b.Fatal(err)
	}
	var boots, floors []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t := time.Now()
		k, err := h.Connect(cx, target)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := k.Ping(cx); err != nil {
			b.Fatal(err)
		}
		boots = append(boots, time.Since(t))
		b.StopTimer()
		k.Close()
		floors = append(floors, median(1, func() { timeCommand(b, "docker", "exec", "-i", c, "true") }))
		b.StartTimer()
	}
	b.StopTimer()
	boot, floor := medianOf(boots), medianOf(floors)
	b.ReportMetric(float64(boot.Microseconds())/1000, "boot-ms")
	b.ReportMetric(float64(floor.Microseconds())/1000, "floor-ms")
	b.ReportMetric(float64(boot)/float64(floor), "x-floor")
}
