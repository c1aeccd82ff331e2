package sudo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/sporehq/spore/sdk"
)

// DefaultUser is the user a hop becomes when it names none (sudo://).
const DefaultUser = "root"

// Transport is the sudo transport. It keeps no state between hops and is
// safe for concurrent use.
type Transport struct{}

// New returns the sudo transport.
func New() *Transport { return &Transport{} }

// The transport's options.
var options = []sdk.Option{
	{Name: "login", Help: "run through the target user's login shell (sudo -i): its profile is read and the directory is its home", Default: "false"},
	{Name: "set_home", Help: "set HOME to the target user's home directory (sudo -H)", Default: "false"},
}

// Info declares the transport: scheme sudo, options login and set_home, same
// host as its parent.
func (*Transport) Info() sdk.Info {
	return sdk.Info{Name: "sudo", Protocol: sdk.ProtocolVersion, SameHost: true, Options: options}
}

// config is a hop's parsed spec.
type config struct {
	user    string
	login   bool
	setHome bool
}

var validUser = regexp.MustCompile(`^(#[0-9]+|[A-Za-z0-9_][A-Za-z0-9_.-]*\$?)$`)

func parseHop(h sdk.Hop) (config, error) {
	c := config{user: h.Host}
	if c.user == "" {
		c.user = DefaultUser
	}
	if h.User != "" {
		return c, sdk.Errorf(sdk.KindBadTarget, "a sudo hop names only the user to become (sudo://USER); remove %q", h.User+"@")
	}
	if h.Port != 0 {
		return c, sdk.Errorf(sdk.KindBadTarget, "sudo://%s: a sudo hop has no port", c.user)
	}
	if len(c.user) > 256 || !validUser.MatchString(c.user) {
		return c, sdk.Errorf(sdk.KindBadTarget, "sudo://%s: not a user name", c.user)
	}
	var err error
	if c.login, err = boolOption(h.Options, "login"); err != nil {
		return c, err
	}
	if c.setHome, err = boolOption(h.Options, "set_home"); err != nil {
		return c, err
	}
	return c, nil
}

func boolOption(opts map[string]string, name string) (bool, error) {
	v, ok := opts[name]
	if !ok {
		return false, nil
	}
	switch strings.ToLower(v) {
	case "", "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, sdk.Errorf(sdk.KindBadTarget, "%s=%s: want true or false", name, v)
}

// argv is the command spawned on the parent.
func (c config) argv(prompt string, boot []string) []string {
	a := []string{"sudo", "-p", prompt, "-u", c.user}
	if c.setHome {
		a = append(a, "-H")
	}
	if c.login {
		a = append(a, "-i")
	}
	a = append(a, "--")
	return append(a, boot...)
}

// newToken returns the random part of a connection's prompt.
func newToken() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// promptFor returns the -p prompt for token: sudo replaces %p with the user
// whose password it wants and %h with the host name.
func promptFor(token string) string {
	return promptStart(token) + "%p@%h" + promptEnd(token)
}

func promptStart(token string) string { return "[spore-sudo " + token + "] " }
func promptEnd(token string) string   { return " [" + token + "]: " }

// Open spawns sudo with the boot command where the parent is, with a
// terminal for the password prompt, and returns the process with a Setup
// that answers the prompt.
func (*Transport) Open(ctx context.Context, req *sdk.OpenRequest) (*sdk.Stream, error) {
	cfg, err := parseHop(req.Hop)
	if err != nil {
		return nil, err
	}
	token, err := newToken()
	if err != nil {
		return nil, fmt.Errorf("making the prompt token: %w", err)
	}
	p, err := req.Parent.Spawn(ctx, sdk.SpawnRequest{
		Argv: cfg.argv(promptFor(token), req.Argv),
		Env:  []string{"LC_MESSAGES=C"},
		TTY:  true,
	})
	if err != nil {
		var se *sdk.Error
		if errors.As(err, &se) && se.Kind == sdk.KindNotFound && strings.HasPrefix(se.Msg, "sudo:") {
			return nil, &sdk.Error{Kind: sdk.KindUnavailable, Msg: "sudo is not installed where this hop starts (sudo: command not found)", Err: err}
		}
		return nil, err
	}
	if p.TTY == nil {
		// No terminal: sudo can still run NOPASSWD rules; a password prompt
		// fails in sudo itself and Classify reports it.
		return &sdk.Stream{Process: p}, nil
	}
	d := &dialogue{
		tty:      p.TTY,
		prompter: req.Prompter,
		token:    token,
		target:   cfg.user,
		log:      req.Log,
		phase:    req.Phase,
	}
	return &sdk.Stream{Process: p, Setup: d.run}, nil
}
