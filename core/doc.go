// Package core is the host side of spore: it builds the boot command,
// drives the first stage's handshake, speaks the wire protocol to booted
// cores, loads transport plugins and serves them Parent and Prompter, and
// offers the Context API — run commands, move files, run Python — on the
// last hop of a chain.
//
// A typical use:
//
//	h := core.NewHost(core.Options{})
//	defer h.Close()
//	c, err := h.Connect(ctx, "ssh://deploy@web1,sudo://root")
//	if err != nil { ... }  // an *sdk.Error with a Kind
//	status, err := c.Run(ctx, &core.Cmd{Argv: []string{"id"}, Stdout: os.Stdout})
//
// core never knows a transport by name: every hop is opened by the plugin
// named spore-transport-SCHEME found beside the executable or on
// SPORE_PLUGIN_PATH.
package core
