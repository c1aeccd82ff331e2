package ssh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"

	xssh "golang.org/x/crypto/ssh"

	"github.com/sporehq/spore/sdk"
)

// dialError turns a failed dial into a KindConnect error (or the deadline
// / cancellation of the whole setup). via names the jump host the dial went
// through, "" for the parent.
func (o *opener) dialError(h *hostConf, via string, err error) error {
	if o.ctx.Err() != nil {
		return o.deadline(h, err)
	}
	var se *sdk.Error
	if errors.As(err, &se) && se.Kind != sdk.KindUnknown {
		// Already typed by the parent (a remote context's dial).
		return err
	}
	from := ""
	if via != "" {
		from = " (through jump host " + via + ")"
	}
	addr := h.addr()
	detail := map[string]string{"address": addr}
	if via != "" {
		detail["jump"] = via
	}
	var (
		dns *net.DNSError
		oce *xssh.OpenChannelError
		msg string
	)
	text := err.Error()
	switch {
	case errors.As(err, &oce):
		m := strings.TrimSpace(oce.Message)
		if m == "" {
			m = oce.Reason.String()
		}
		msg = fmt.Sprintf("jump host %s could not connect to %s: %s", via, addr, m)
	case errors.As(err, &dns) || containsAny(text, "no such host", "server misbehaving", "Name or service not known"):
		name := h.hostName
		msg = fmt.Sprintf("cannot resolve host name %q%s: check the name (or HostName in ssh_config)", name, from)
	case errors.Is(err, syscall.ECONNREFUSED) || containsAny(text, "connection refused"):
		msg = fmt.Sprintf("connection to %s refused%s: is sshd running there, on that port?", addr, from)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err) ||
		containsAny(text, "i/o timeout", "deadline exceeded", "timed out"):
		msg = fmt.Sprintf("timed out connecting to %s%s (connect_timeout %s)", addr, from, orDash(h.connectTimeout.String(), h.connectTimeout == 0))
	case errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EHOSTUNREACH) ||
		containsAny(text, "network is unreachable", "no route to host"):
		msg = fmt.Sprintf("cannot reach %s%s: %s", addr, from, lastPart(text))
	default:
		msg = fmt.Sprintf("cannot connect to %s%s: %s", addr, from, oneLine(text))
	}
	return &sdk.Error{Kind: sdk.KindConnect, Msg: msg, Detail: detail, Err: err}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func lastPart(s string) string {
	s = oneLine(s)
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:]
	}
	return s
}

func orDash(s string, dash bool) string {
	if dash {
		return "none"
	}
	return s
}
