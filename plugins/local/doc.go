// Package local is the local transport: it runs the boot command where its
// parent is, with Parent.Spawn. From the host that is this machine; after
// another hop (ssh://web1,local://) it is that hop's machine.
//
// It declares no options of its own; python= and timeout= are the host's.
package local
