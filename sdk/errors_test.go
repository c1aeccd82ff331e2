package sdk

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sporehq/spore/sdk/rpc"
)

func TestErrorKindSurvivesWrappingAndTheWire(t *testing.T) {
	e := Errorf(KindHostKeyChanged, "host key for web1 changed").WithDetail("file", "/root/.ssh/known_hosts:3")
	e.Stderr = "line one\nlast line\n"
	wrapped := fmt.Errorf("opening: %w", e)
	if KindOf(wrapped) != KindHostKeyChanged || !errors.Is(wrapped, &Error{Kind: KindHostKeyChanged}) {
		t.Fatalf("kind lost through wrapping: %v", wrapped)
	}
	if errors.Is(wrapped, &Error{Kind: KindAuth}) {
		t.Fatal("Is matched another kind")
	}
	// Across the plugin boundary: gRPC status and back.
	back := FromWire(rpc.FromStatus(rpc.ToStatus(wrapped)))
	var be *Error
	if !errors.As(back, &be) || be.Kind != KindHostKeyChanged || be.Detail["file"] != "/root/.ssh/known_hosts:3" || be.Msg != e.Msg {
		t.Fatalf("after the wire: %#v", back)
	}
	if got := be.Error(); strings.Contains(got, "\n") || !strings.HasSuffix(got, ": last line") {
		t.Fatalf("Error() = %q, want one line ending with the stderr's last line", got)
	}
	// A plain error crosses as kind unknown with its text.
	if got := FromWire(rpc.FromStatus(rpc.ToStatus(errors.New("boom")))); KindOf(got) != KindUnknown || got.Error() != "boom" {
		t.Fatalf("plain error: %v", got)
	}
}
