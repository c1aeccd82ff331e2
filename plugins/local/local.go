package local

import (
	"context"

	"github.com/sporehq/spore/sdk"
)

// Transport is the local transport.
type Transport struct{}

// New returns the local transport.
func New() *Transport { return &Transport{} }

// Info declares the transport: scheme local, no options, same host as its
// parent.
func (*Transport) Info() sdk.Info {
	return sdk.Info{Name: "local", Protocol: sdk.ProtocolVersion, SameHost: true}
}

// Open spawns the boot command where the parent is.
func (*Transport) Open(ctx context.Context, req *sdk.OpenRequest) (*sdk.Stream, error) {
	p, err := req.Parent.Spawn(ctx, sdk.SpawnRequest{Argv: req.Argv})
	if err != nil {
		return nil, err
	}
	return &sdk.Stream{Process: p}, nil
}
