package core

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/sporehq/spore/sdk/rpc"
)

// BenchmarkConnPingFakeCore measures the host's own share of a round trip:
// a minimal Python loop answers each request frame with an empty reply.
func BenchmarkConnPingFakeCore(b *testing.B) {
	cmd := exec.Command("/usr/bin/python3", "-Sc", `import os,struct
H=struct.Struct('>BII')
while True:
    h=os.read(0,9)
    if len(h)<9: break
    t,i,n=H.unpack(h)
    p=os.read(0,n)
    os.write(1,H.pack(2,i,2)+b'{}')
`)
	inR, inW, _ := os.Pipe()
	outR, outW, _ := os.Pipe()
	cmd.Stdin, cmd.Stdout = inR, outW
	if err := cmd.Start(); err != nil {
		b.Skip(err)
	}
	inR.Close()
	outW.Close()
	p := &localProc{cmd: cmd, stdin: inW, stdout: outR, done: make(chan struct{})}
	p.out = rpc.BlockingReader(outR)
	c := newConn("fake", p, p)
	defer c.fail(nil)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.call(ctx, map[string]string{"op": "ping"}, nil); err != nil {
			b.Fatal(err)
		}
	}
}
