package rpc

import (
	"context"
	"io"
	"os"
	"testing"
	"time"
)

func TestFDPassBothWays(t *testing.T) {
	host, theirs, err := NewFDPassPair()
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	plugin, err := NewFDPass(theirs)
	if err != nil {
		t.Fatal(err)
	}
	defer plugin.Close()
	send := func(from, to *FDPass, isPlugin bool, msg string) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		tok := from.NewToken(isPlugin)
		if err := from.Send(tok, r); err != nil {
			t.Fatal(err)
		}
		r.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		got, err := to.Receive(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(msg))
		w.Close()
		b, _ := io.ReadAll(got)
		got.Close()
		if string(b) != msg {
			t.Fatalf("read %q through the passed descriptor, want %q", b, msg)
		}
	}
	send(plugin, host, true, "plugin to host")
	send(host, plugin, false, "host to plugin")
	// A token nobody sends times out instead of hanging.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := host.Receive(ctx, 12345); err == nil {
		t.Fatal("received a descriptor that was never sent")
	}
}
