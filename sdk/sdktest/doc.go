// Package sdktest is the conformance suite for spore transports. A
// transport's own tests run it in a few lines:
//
//	func TestConformance(t *testing.T) {
//		sdktest.Run(t, mytransport.New(), sdktest.Config{
//			Hop: sdk.Hop{Scheme: "mine", Host: "box1"},
//		})
//	}
//
// The suite checks what the host relies on: a well-formed Info, a stream
// that carries bytes both ways unchanged with EOF passed through, the exit
// of the remote side when the stream is closed, a failure the transport
// classifies sensibly when the interpreter does not exist, several hops
// opened at once, and a cancelled context honoured. It drives the
// transport in-process with a Parent that spawns and dials on this machine,
// so it needs no spore host.
package sdktest
