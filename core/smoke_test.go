package core

import (
	"bytes"
	"testing"

	"github.com/sporehq/spore/sdk"
)

func TestSmokeLocal(t *testing.T) {
	h := newTestHost(t)
	ctx := testCtx(t)
	c, err := h.Connect(ctx, "local://?python=/usr/bin/python3")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("facts %+v phases %+v", c.Facts(), c.Phases())
	if _, err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	st, err := c.Run(ctx, &Cmd{Argv: []string{"sh", "-c", "echo hi; exit 3"}, Stdout: &out})
	if err != nil || st != 3 || out.String() != "hi\n" {
		t.Fatalf("st=%d err=%v out=%q", st, err, out.String())
	}
	c.Close()
	if k := sdk.KindOf(c.Err()); k != sdk.KindClosed {
		t.Fatalf("after Close, Err() = %v (kind %s), want closed", c.Err(), k)
	}
	if _, err := c.Ping(ctx); sdk.KindOf(err) != sdk.KindClosed {
		t.Fatalf("ping after Close: %v", err)
	}
}
