package sdk

import (
	"context"
	"io"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
)

// ProtocolVersion is the version of the host/transport contract this package
// speaks. The host refuses a transport built against another version.
const ProtocolVersion = 1

// Transport is one way of reaching a hop. Implementations must be safe for
// concurrent use: the host may open several hops through one plugin process
// at once.
type Transport interface {
	// Info names the transport and declares its options. It is called once,
	// when the host loads the plugin.
	Info() Info

	// Open arranges for req.Argv to run on the target and returns the byte
	// stream connected to its stdin and stdout.
	//
	// Open either returns a Stream holding the Process from req.Parent.Spawn
	// (the host already owns that process's bytes), or a Stream holding a
	// connection the transport owns (an ssh session), whose bytes the host
	// reads and writes through Conn.
	//
	// Open must return as soon as the stream exists; work that can only
	// finish later (answering a password prompt on a tty) belongs in
	// Stream.Setup. Errors should be *Error values with a Kind, so the user
	// is told what to do.
	Open(ctx context.Context, req *OpenRequest) (*Stream, error)
}

// Classifier is implemented by transports that can recognise their own
// failures in what a target printed before the boot markers ("incorrect
// password", "No such container"). The host calls Classify after a failed
// boot; a nil result leaves the failure to the host's generic classes (no
// Python, transport exited early, deadline).
type Classifier interface {
	Classify(f BootFailure) error
}

// Info describes a transport to the host.
type Info struct {
	// Name is the URL scheme that selects this transport ("ssh").
	Name string
	// Options lists every option the transport accepts. The host refuses a
	// hop naming any other option before anything connects. Options shared
	// by every hop (python, timeout, password_env, password_file) are the
	// host's and must not be listed.
	Options []Option
	// Protocol must be ProtocolVersion.
	Protocol int
	// SameHost is true when the hop runs on the machine of its parent (a
	// local fork, sudo): with python=auto the host then first tries the
	// interpreter the parent context runs on.
	SameHost bool
}

// Option documents one hop option (?name=value in a target).
type Option struct {
	Name string
	// Help is one line for `spore plugins` and error messages.
	Help string
	// Default is shown in help; the transport applies it itself.
	Default string
	// Secret marks an option whose value must never be logged.
	Secret bool
}

// Hop is the parsed spec of the hop being opened: ssh://deploy@web1:2222.
type Hop struct {
	Scheme string
	User   string
	Host   string
	Port   int
	// Options holds the transport's own options from the target string.
	Options map[string]string
}

// OpenRequest is everything a transport is told about one hop.
type OpenRequest struct {
	// Name is the context's name, as shown in ps: "web1" or "sudo:root".
	Name string
	// Hop is the target spec of this hop.
	Hop Hop
	// Argv is the boot command to run on the target, unchanged: Argv[0] is
	// the Python interpreter.
	Argv []string
	// Parent is where this hop starts from: the local machine or an already
	// connected context.
	Parent Parent
	// Prompter asks the person running spore for secrets.
	Prompter Prompter
	// Log goes to the host's log (shown with spore -v).
	Log hclog.Logger
	// Phase marks the start of a named setup phase ("dial", "handshake",
	// "auth"); spore ping shows the time spent in each.
	Phase func(name string)
	// Timeout is the hop's setup deadline; ctx carries it too.
	Timeout time.Duration
}

// Stream is what Open returns: exactly one of Process or Conn is set.
type Stream struct {
	// Process is the handle returned by OpenRequest.Parent.Spawn.
	Process *Process
	// Conn is a byte stream owned by the transport (an ssh session's stdin
	// and stdout). Closing it must end the remote side. Its bytes are relayed
	// to the host; reads return io.EOF when the target's stdout closes.
	Conn io.ReadWriteCloser
	// Stderr, with Conn, carries the target's stderr (may be nil).
	Stderr io.Reader
	// Setup, if set, runs after Open returns and until the host reports the
	// context up (ctx is then cancelled) or the boot fails. A non-nil
	// return other than ctx's error fails the boot with that error.
	Setup func(ctx context.Context) error
	// Close, if set, is called when the hop is closed, to release what the
	// transport holds for it (an ssh client).
	Close func() error
}

// Parent is where a hop starts from. Methods are safe for concurrent use.
type Parent interface {
	// Spawn starts a process where the parent is. Its stdin and stdout are
	// binary-clean pipes owned by the host; the returned Process is an
	// opaque handle plus, when asked for, the process's terminal.
	Spawn(ctx context.Context, req SpawnRequest) (*Process, error)
	// Dial opens a byte stream to address, as seen from the parent.
	Dial(ctx context.Context, network, address string) (net.Conn, error)
	// Local reports whether the parent is the machine spore runs on.
	Local() bool
}

// SpawnRequest describes a process for Parent.Spawn.
type SpawnRequest struct {
	Argv []string
	// Env holds extra KEY=VALUE entries added to the parent's environment.
	Env []string
	// Dir is the working directory; empty means the parent's.
	Dir string
	// TTY gives the process a new session with a pseudo-terminal as its
	// controlling terminal (for password prompts) while stdin and stdout
	// stay pipes. Process.TTY is then the terminal's master side.
	TTY bool
}

// Process is an opaque handle to a spawned process.
type Process struct {
	// ID identifies the process to the host. It is not a pid.
	ID string
	// TTY is the master side of the process's terminal when SpawnRequest.TTY
	// was set, else nil. Reads return what the process wrote to /dev/tty;
	// writes are typed into it.
	TTY io.ReadWriteCloser
}

// Prompter asks the person running spore for a value.
type Prompter interface {
	// Prompt returns the answer to p. For secrets, the host first looks at
	// the hop's password_env= and password_file= options, then asks on the
	// terminal without echo. With no terminal (or --batch) it fails at once
	// with an *Error of KindPromptUnavailable.
	Prompt(ctx context.Context, p Prompt) (string, error)
}

// Prompt is one question for Prompter.
type Prompt struct {
	// Key names what is asked for: "password", "passphrase".
	Key string
	// Message is shown to the person: "deploy@web1's password: ".
	Message string
	// Secret prompts are read without echo and never logged.
	Secret bool
	// Retry is true when an earlier answer to the same question was wrong;
	// the host then never reuses a password_env/password_file value.
	Retry bool
}

// BootFailure is what the host saw of a boot that did not reach its second
// marker.
type BootFailure struct {
	// Output is what the target wrote to stdout before the markers.
	Output []byte
	// Stderr is the tail of the target's stderr (capped).
	Stderr []byte
	// TTY is the tail of what appeared on the process's terminal, if any.
	TTY []byte
	// Exited reports whether the process has exited; ExitStatus is its
	// status then (128+N for death by signal N), else -1.
	Exited     bool
	ExitStatus int
	// Python is the interpreter the boot command named.
	Python string
}
