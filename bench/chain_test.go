package bench

import (
	"fmt"
	"net/url"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/sporehq/spore/internal/testenv"
)

// chainBench is the test sshd with sporenopw (sudo NOPASSWD: no password
// typed, so the numbers measure spore, not PAM's checking a password), a
// known_hosts file for it, and the ssh hop and the ssh+sudo chain that
// reach it with /usr/bin/python3.
type chainBench struct {
	srv        *testenv.SSHServer
	u          testenv.User
	knownHosts string
	ssh, chain string
}

func newChainBench(b *testing.B) *chainBench {
	testenv.Sudo(b)
	srv := testenv.SSHD(b)
	py := testenv.SystemPython(b)
	u := srv.Users.NoPasswd
	kh := srv.WriteKnownHosts(b)
	q := url.Values{}
	q.Set("identity", u.KeyFile)
	q.Set("known_hosts", kh)
	q.Set("config", "none")
	q.Set("python", py)
	ssh := fmt.Sprintf("ssh://%s@%s:%d?%s", u.Name, srv.Host, srv.Port, q.Encode())
	return &chainBench{srv: srv, u: u, knownHosts: kh, ssh: ssh, chain: ssh + ",sudo://root?python=" + py}
}

// opensshTrue runs OpenSSH's `ssh ... sporenopw@127.0.0.1 true`: key only,
// batch mode, strict known_hosts, no ssh_config.
func (s *chainBench) opensshTrue(b *testing.B) {
	cmd := exec.Command("ssh", "-F", "/dev/null",
		"-p", strconv.Itoa(s.srv.Port), "-i", s.u.KeyFile,
		"-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile="+s.knownHosts, "-o", "GlobalKnownHostsFile=/dev/null",
		s.u.Name+"@"+s.srv.Host, "true")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("ssh true: %v\n%s", err, out)
	}
}

// BenchmarkBootstrapSudoSSH: ssh as sporenopw then sudo://root (NOPASSWD),
// bootstrap to first reply (Connect + Ping of the sudo context: two
// interpreters booted, the second through the first), against OpenSSH's
// `ssh ... true` to the same sshd, measured between the boots.
// Goal: x-floor ≤ 1.4.
func BenchmarkBootstrapSudoSSH(b *testing.B) {
	s := newChainBench(b)
	h := newHost(b)
	c := ctx(b)
	// Warm up the plugins, sshd, sudo and the page cache.
	for i := 0; i < 2; i++ {
		cx, err := h.Connect(c, s.chain)
		if err != nil {
			b.Fatal(err)
		}
		cx.Parent().Close()
	}
	timed := func(f func()) time.Duration { t := time.Now(); f(); return time.Since(t) }
	var floors, boots []time.Duration
	for i := 0; i < 5; i++ {
		floors = append(floors, timed(func() { s.opensshTrue(b) }))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t := time.Now()
		cx, err := h.Connect(c, s.chain)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cx.Ping(c); err != nil {
			b.Fatal(err)
		}
		boots = append(boots, time.Since(t))
		b.StopTimer()
		cx.Parent().Close()
		floors = append(floors, timed(func() { s.opensshTrue(b) }))
		b.StartTimer()
	}
	b.StopTimer()
	med, floor := medianOf(boots), medianOf(floors)
	b.ReportMetric(float64(med.Microseconds())/1000, "boot-ms")
	b.ReportMetric(float64(floor.Microseconds())/1000, "floor-ms")
	b.ReportMetric(float64(med)/float64(floor), "x-floor")
}

// BenchmarkPingTwoHops: one request/reply round trip to the sudo core of
// ssh+sudo (its bytes ride a channel of the ssh core), against a ping of
// that ssh core itself, alternately on the same connection. Goal: ≤ 200 µs
// two hops (µs/ping-2hop).
func BenchmarkPingTwoHops(b *testing.B) {
	s := newChainBench(b)
	h := newHost(b)
	c := ctx(b)
	inner, err := h.Connect(c, s.chain)
	if err != nil {
		b.Fatal(err)
	}
	outer := inner.Parent()
	defer outer.Close()
	for i := 0; i < 200; i++ { // warm up
		if _, err := inner.Ping(c); err != nil {
			b.Fatal(err)
		}
		if _, err := outer.Ping(c); err != nil {
			b.Fatal(err)
		}
	}
	var one, two time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, err := outer.Ping(c)
		if err != nil {
			b.Fatal(err)
		}
		one += d
		if d, err = inner.Ping(c); err != nil {
			b.Fatal(err)
		}
		two += d
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(two.Nanoseconds())/1000/n, "µs/ping-2hop")
	b.ReportMetric(float64(one.Nanoseconds())/1000/n, "µs/ping-ssh")
	b.ReportMetric(float64(two)/float64(one), "x-ssh")
}
