package rpc

import (
	"context"

	"google.golang.org/grpc"
)

// Method names of the two services.
const (
	TransportService = "spore.Transport"
	HostService      = "spore.Host"

	MethodInfo     = "/spore.Transport/Info"
	MethodInit     = "/spore.Transport/Init"
	MethodOpen     = "/spore.Transport/Open"
	MethodClassify = "/spore.Transport/Classify"
	MethodRelease  = "/spore.Transport/Release"

	MethodSpawn  = "/spore.Host/Spawn"
	MethodTTY    = "/spore.Host/TTY"
	MethodDial   = "/spore.Host/Dial"
	MethodPrompt = "/spore.Host/Prompt"
	MethodPhase  = "/spore.Host/Phase"
)

// TransportServer is served by a plugin.
type TransportServer interface {
	Info(context.Context, *Empty) (*InfoResponse, error)
	Init(context.Context, *InitRequest) (*Empty, error)
	// Open sends OpenEvents on send until ctx ends.
	Open(ctx context.Context, req *OpenRequest, send func(*OpenEvent) error) error
	Classify(context.Context, *ClassifyRequest) (*ClassifyResponse, error)
	Release(context.Context, *ReleaseRequest) (*Empty, error)
}

// InfoResponse is sdk.Info on the wire.
type InfoResponse struct {
	Name     string       `json:"name"`
	Options  []OptionInfo `json:"options"`
	Protocol int          `json:"protocol"`
	SameHost bool         `json:"same_host,omitempty"`
}

// OptionInfo is sdk.Option on the wire.
type OptionInfo struct {
	Name    string `json:"name"`
	Help    string `json:"help"`
	Default string `json:"default,omitempty"`
	Secret  bool   `json:"secret,omitempty"`
}

// HostServer is served by the host to each plugin through the broker.
type HostServer interface {
	Spawn(context.Context, *SpawnRequest) (*SpawnResponse, error)
	// TTY relays a spawned process's terminal: recv returns the plugin's
	// chunks (the first names the process), send writes to the plugin.
	TTY(ctx context.Context, recv func() (*TTYChunk, error), send func(*TTYChunk) error) error
	Dial(context.Context, *DialRequest) (*DialResponse, error)
	Prompt(context.Context, *PromptRequest) (*PromptResponse, error)
	Phase(context.Context, *PhaseRequest) (*Empty, error)
}

func unary[S any, Req any, Resp any](name string, call func(S, context.Context, *Req) (*Resp, error)) grpc.MethodDesc {
	return grpc.MethodDesc{
		MethodName: name,
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			req := new(Req)
			if err := dec(req); err != nil {
				return nil, err
			}
			resp, err := call(srv.(S), ctx, req)
			if err != nil {
				return nil, ToStatus(err)
			}
			return resp, nil
		},
	}
}

// RegisterTransport registers impl on s.
func RegisterTransport(s *grpc.Server, impl TransportServer) {
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: TransportService,
		HandlerType: (*TransportServer)(nil),
		Methods: []grpc.MethodDesc{
			unary("Info", TransportServer.Info),
			unary("Init", TransportServer.Init),
			unary("Classify", TransportServer.Classify),
			unary("Release", TransportServer.Release),
		},
		Streams: []grpc.StreamDesc{{
			StreamName:    "Open",
			ServerStreams: true,
			Handler: func(srv any, stream grpc.ServerStream) error {
				req := new(OpenRequest)
				if err := stream.RecvMsg(req); err != nil {
					return err
				}
				send := func(ev *OpenEvent) error { return stream.SendMsg(ev) }
				return ToStatus(srv.(TransportServer).Open(stream.Context(), req, send))
			},
		}},
	}, impl)
}

// RegisterHost registers impl on s.
func RegisterHost(s *grpc.Server, impl HostServer) {
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: HostService,
		HandlerType: (*HostServer)(nil),
		Methods: []grpc.MethodDesc{
			unary("Spawn", HostServer.Spawn),
			unary("Dial", HostServer.Dial),
			unary("Prompt", HostServer.Prompt),
			unary("Phase", HostServer.Phase),
		},
		Streams: []grpc.StreamDesc{{
			StreamName:    "TTY",
			ServerStreams: true,
			ClientStreams: true,
			Handler: func(srv any, stream grpc.ServerStream) error {
				recv := func() (*TTYChunk, error) {
					c := new(TTYChunk)
					return c, stream.RecvMsg(c)
				}
				send := func(c *TTYChunk) error { return stream.SendMsg(c) }
				return ToStatus(srv.(HostServer).TTY(stream.Context(), recv, send))
			},
		}},
	}, impl)
}

// OpenStream starts the Open call on cc.
func OpenStream(ctx context.Context, cc grpc.ClientConnInterface, req *OpenRequest) (func() (*OpenEvent, error), error) {
	st, err := cc.NewStream(ctx, &grpc.StreamDesc{StreamName: "Open", ServerStreams: true}, MethodOpen, CallOption)
	if err != nil {
		return nil, FromStatus(err)
	}
	if err := st.SendMsg(req); err != nil {
		return nil, FromStatus(err)
	}
	if err := st.CloseSend(); err != nil {
		return nil, FromStatus(err)
	}
	return func() (*OpenEvent, error) {
		ev := new(OpenEvent)
		if err := st.RecvMsg(ev); err != nil {
			return nil, FromStatus(err)
		}
		return ev, nil
	}, nil
}

// TTYStream starts the TTY call on cc.
func TTYStream(ctx context.Context, cc grpc.ClientConnInterface) (grpc.ClientStream, error) {
	st, err := cc.NewStream(ctx, &grpc.StreamDesc{StreamName: "TTY", ServerStreams: true, ClientStreams: true}, MethodTTY, CallOption)
	return st, FromStatus(err)
}
