// Package sdk is everything the author of a spore transport needs.
//
// A transport is a small program, built separately from spore, that knows
// how to reach one more hop: a local fork, an ssh server, a sudo account, a
// container. It never speaks spore's wire protocol and never sees the bytes
// of a spawned process; it only arranges for the boot command the host gives
// it to run on the target, and hands back the resulting byte stream.
//
// A transport implements [Transport] (and optionally [Classifier]) and calls
// [Serve] from its main function:
//
//	func main() { sdk.Serve(mytransport.New()) }
//
// The host launches the binary (named spore-transport-NAME) with
// hashicorp/go-plugin over gRPC. For each hop it calls [Transport.Open] with
// an [OpenRequest]: the boot argv to run, the hop's options (already checked
// against [Transport.Options]), a [Parent] that can spawn processes or dial
// addresses where the previous hop is, and a [Prompter] for secrets.
//
// Package sdktest holds a conformance suite that every transport runs in
// its own tests.
package sdk
