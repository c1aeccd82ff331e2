package sdk

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sporehq/spore/sdk/rpc"
)

// Kind classifies a failure so a program can react to it and a person is
// told what to do. Kinds cross the plugin boundary unchanged.
type Kind string

// The kinds of failure spore reports.
const (
	KindUnknown           Kind = "unknown"
	KindBadTarget         Kind = "bad-target"         // target syntax, unknown option
	KindNoPlugin          Kind = "no-plugin"          // no transport serves the scheme
	KindNoPython          Kind = "no-python"          // interpreter not found on the target
	KindTransportExited   Kind = "transport-exited"   // the process exited before booting
	KindCorruptPreamble   Kind = "corrupt-preamble"   // the first stage could not read the preamble
	KindDeadline          Kind = "deadline"           // setup deadline passed
	KindConnect           Kind = "connect"            // connection refused, unreachable, DNS
	KindAuth              Kind = "auth"               // authentication failed
	KindHostKeyUnknown    Kind = "host-key-unknown"   // host key not in known_hosts
	KindHostKeyChanged    Kind = "host-key-changed"   // host key differs from known_hosts
	KindIncorrectPassword Kind = "incorrect-password" // a password was refused
	KindNotAllowed        Kind = "not-allowed"        // e.g. not in sudoers
	KindNoSuchContainer   Kind = "no-such-container"  // docker: no such container
	KindNotRunning        Kind = "not-running"        // docker: container not running
	KindUnavailable       Kind = "unavailable"        // a tool or daemon is missing
	KindPermission        Kind = "permission"         // permission denied
	KindPromptUnavailable Kind = "prompt-unavailable" // a secret is needed, nobody to ask
	KindParentLost        Kind = "parent-lost"        // the hop this one runs through died
	KindProtocol          Kind = "protocol"           // corrupt or oversized frame
	KindRemote            Kind = "remote"             // exception raised on the target
	KindClosed            Kind = "closed"             // the context was closed
	KindFS                Kind = "fs"                 // a remote file operation failed
	KindNotFound          Kind = "not-found"          // a remote command does not exist
	KindExec              Kind = "exec"               // a remote command could not be started
	KindBadRequest        Kind = "bad-request"        // a request the core refused
)

// Error is spore's typed error. Transports return it from Open, Setup and
// Classify; the host returns it from every call that fails for a reason a
// person can act on.
type Error struct {
	Kind Kind
	// Hop names the hop that failed ("ssh://deploy@web1"); set by the host.
	Hop string
	// Msg is one line saying what happened and, where possible, what to do.
	Msg string
	// Detail holds data a program may want: "fingerprint", "file",
	// "methods", "python", "exit_status", "traceback".
	Detail map[string]string
	// Stderr is the target's stderr tail, capped, when it explains the error.
	Stderr string
	// Err is the underlying cause, if any.
	Err error
}

// Errorf returns an *Error of kind k.
func Errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// Error returns one line: "hop: message", and when the target's stderr
// explains the failure, its last line after a colon. The whole stderr tail
// stays in Stderr.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Hop != "" {
		b.WriteString(e.Hop)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Msg == "" && e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	if last := lastLine(e.Stderr); last != "" {
		b.WriteString(": ")
		b.WriteString(last)
	}
	return b.String()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			if len(l) > 200 {
				l = l[:200] + "..."
			}
			return l
		}
	}
	return ""
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error of the same Kind, so that
// errors.Is(err, &sdk.Error{Kind: sdk.KindAuth}) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind && t.Msg == "" && t.Hop == ""
}

// KindOf returns the Kind of the first *Error in err's chain, or
// KindUnknown.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindUnknown
}

// Wire returns e's form for crossing the plugin boundary.
func (e *Error) Wire() *rpc.WireError {
	m := e.Msg
	if m == "" && e.Err != nil {
		m = e.Err.Error()
	}
	return &rpc.WireError{Kind: string(e.Kind), Msg: m, Detail: e.Detail, Stderr: e.Stderr}
}

// FromWire converts an error that crossed the plugin boundary back into an
// *Error; other errors are returned unchanged.
func FromWire(err error) error {
	var w *rpc.WireError
	if errors.As(err, &w) {
		return &Error{Kind: Kind(w.Kind), Msg: w.Msg, Detail: w.Detail, Stderr: w.Stderr}
	}
	return err
}

// WithDetail sets Detail[key] = value and returns e.
func (e *Error) WithDetail(key, value string) *Error {
	if e.Detail == nil {
		e.Detail = map[string]string{}
	}
	e.Detail[key] = value
	return e
}
