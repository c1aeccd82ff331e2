// Package rpc is the plumbing between the spore host and its transport
// plugins: the gRPC services (with a JSON codec, so no generated code is
// needed), the messages they carry, and the passing of file descriptors
// over a Unix socket so that stream bytes never cross gRPC.
//
// Transport authors do not import it: sdk.Serve and the host use it.
package rpc
