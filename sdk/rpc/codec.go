package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/status"
)

// CodecName is the gRPC content-subtype of spore's JSON codec.
const CodecName = "spore-json"

type jsonCodec struct{}

func (jsonCodec) Marshal(v any) ([]byte, error)   { return json.Marshal(v) }
func (jsonCodec) Unmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
func (jsonCodec) Name() string                    { return CodecName }

func init() { encoding.RegisterCodec(jsonCodec{}) }

// CallOption selects the JSON codec for a call on a shared connection.
var CallOption = grpc.CallContentSubtype(CodecName)

// Invoke calls a unary method with the JSON codec.
func Invoke(ctx context.Context, cc grpc.ClientConnInterface, method string, req, resp any) error {
	return FromStatus(cc.Invoke(ctx, method, req, resp, CallOption))
}

const errPrefix = "spore-error:"

// WireError is an error's kind, message, details and stderr tail as they
// cross the plugin boundary.
type WireError struct {
	Kind   string            `json:"kind"`
	Msg    string            `json:"msg"`
	Detail map[string]string `json:"detail,omitempty"`
	Stderr string            `json:"stderr,omitempty"`
}

// Error implements error.
func (w *WireError) Error() string { return w.Msg }

// Wirer is implemented by errors that know their wire form (sdk.Error).
type Wirer interface {
	error
	Wire() *WireError
}

// EncodeError converts err for a message field (nil for nil).
func EncodeError(err error) *WireError {
	if err == nil {
		return nil
	}
	var w Wirer
	if errors.As(err, &w) {
		return w.Wire()
	}
	var we *WireError
	if errors.As(err, &we) {
		return we
	}
	return &WireError{Kind: "unknown", Msg: err.Error()}
}

// ToStatus turns err into a gRPC status error that keeps its wire form.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok && !isWire(err) {
		return err
	}
	b, _ := json.Marshal(EncodeError(err))
	return status.Error(codes.Unknown, errPrefix+string(b))
}

func isWire(err error) bool {
	var w Wirer
	var we *WireError
	return errors.As(err, &w) || errors.As(err, &we)
}

// FromStatus reverses ToStatus, returning a *WireError; other errors pass
// through.
func FromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	if msg := st.Message(); strings.HasPrefix(msg, errPrefix) {
		var w WireError
		if json.Unmarshal([]byte(msg[len(errPrefix):]), &w) == nil {
			return &w
		}
	}
	if st.Code() == codes.Canceled {
		return context.Canceled
	}
	return errors.New(st.Message())
}

// Handshake is the go-plugin handshake shared by host and plugins. The
// cookie only keeps a plugin binary from being run by hand by mistake.
var Handshake = HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "SPORE_TRANSPORT_PLUGIN",
	MagicCookieValue: "b6f1c0a2-spore-transport",
}

// HandshakeConfig mirrors plugin.HandshakeConfig without importing it here.
type HandshakeConfig struct {
	ProtocolVersion  uint
	MagicCookieKey   string
	MagicCookieValue string
}

// PluginName is the name of the one plugin in each plugin binary's set.
const PluginName = "transport"
