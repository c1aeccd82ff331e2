// Package ssh is spore's ssh transport: it reaches a hop the way OpenSSH
// would, with golang.org/x/crypto/ssh, and runs the host's boot command there
// as one shell-quoted command in a session without a pty.
//
// The connection starts from the hop's parent (sdk.Parent.Dial), so an ssh
// hop works from the local machine and from any already connected context.
// ProxyJump hosts are reached with direct-tcpip channels through the previous
// jump host, as OpenSSH does it: they need no Python.
//
// What OpenSSH users rely on is honoured: ~/.ssh/config and
// /etc/ssh/ssh_config (Host patterns, Include, HostName, User, Port,
// IdentityFile, IdentitiesOnly, IdentityAgent, UserKnownHostsFile,
// GlobalKnownHostsFile, StrictHostKeyChecking, HashKnownHosts, HostKeyAlias,
// ProxyJump, ConnectTimeout, ServerAliveInterval, ServerAliveCountMax,
// BatchMode, PubkeyAuthentication, PasswordAuthentication,
// KbdInteractiveAuthentication, NumberOfPasswordPrompts); ssh-agent;
// identity files (an encrypted one asks for its passphrase through the
// host's Prompter); password and keyboard-interactive authentication through
// the Prompter; and known_hosts, strict by default.
//
// Failures are *sdk.Error values: KindConnect, KindAuth (Detail["methods"]
// lists the methods tried), KindHostKeyUnknown, KindHostKeyChanged
// (Detail["fingerprint"], Detail["file"] as file:line), KindBadTarget for a
// bad option or ssh_config, KindPromptUnavailable when a secret is needed and
// nobody can be asked, and, through Classify, KindNoPython.
//
// The plugin binary is plugins/ssh/cmd/spore-transport-ssh.
package ssh
