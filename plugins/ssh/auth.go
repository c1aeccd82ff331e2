package ssh

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	xssh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/sporehq/spore/sdk"
)

// keyCache holds identity files decrypted during one Open, so that a key
// used for a jump host and the target asks for its passphrase once.
type keyCache struct {
	mu      sync.Mutex
	signers map[string]xssh.Signer
}

// authenticator drives authentication with one server in OpenSSH's order:
// agent keys, identity files, keyboard-interactive, password. It is the
// ClientConfig.AuthCallback, so every key is its own attempt and a key that
// cannot be unlocked does not stop the others.
type authenticator struct {
	ctx      context.Context
	h        *hostConf
	prompter sdk.Prompter
	log      hclog.Logger
	jump     bool
	keys     *keyCache

	steps []authStep
	next  int

	agentConn io.Closer

	tried         []string // methods tried, once each, in order
	identities    []string // key sources tried, for Detail
	passwordGiven bool     // a password was sent and, so far, refused
	promptErr     error    // the Prompter could not ask
	lastMethod    string   // the last attempt's method (for the log)
	lastSource    string   // what the last attempt used (for the log)
}

type authStep struct {
	method string
	source string // "agent: comment", a key file, "prompt"
	make   func() xssh.AuthMethod
}

func newAuthenticator(ctx context.Context, h *hostConf, p sdk.Prompter, log hclog.Logger, jump bool, keys *keyCache) *authenticator {
	a := &authenticator{ctx: ctx, h: h, prompter: p, log: log, jump: jump, keys: keys, lastMethod: "none"}
	if h.pubkey {
		a.addKeySteps()
	}
	// OpenSSH's PreferredAuthentications order: keyboard-interactive
	// before password.
	if h.kbdInteractive && !h.batch {
		for i := 0; i < h.passwordPrompts; i++ {
			a.steps = append(a.steps, authStep{method: "keyboard-interactive", source: "prompt", make: a.kbdMethod})
		}
	}
	if h.password && !h.batch {
		for i := 0; i < h.passwordPrompts; i++ {
			a.steps = append(a.steps, authStep{method: "password", source: "prompt", make: a.passwordMethod})
		}
	}
	return a
}

// close releases the agent connection.
func (a *authenticator) close() {
	if a.agentConn != nil {
		_ = a.agentConn.Close()
	}
}

// callback is the ClientConfig.AuthCallback: the next step the server
// allows, or nil when none is left.
func (a *authenticator) callback(ac *xssh.ClientAuthContext) (xssh.AuthMethod, error) {
	for a.next < len(a.steps) {
		s := a.steps[a.next]
		a.next++
		if !slices.Contains(ac.AllowedMethods, s.method) {
			continue
		}
		if s.source == "prompt" && a.promptErr != nil {
			continue
		}
		if err := a.ctx.Err(); err != nil {
			return nil, err
		}
		if !slices.Contains(a.tried, s.method) {
			a.tried = append(a.tried, s.method)
		}
		if s.method == "publickey" {
			a.identities = append(a.identities, s.source)
		}
		a.lastMethod, a.lastSource = s.method, s.source
		a.log.Debug("trying authentication", "method", s.method, "source", s.source)
		return s.make(), nil
	}
	return nil, nil
}

// addKeySteps lists agent keys, then identity files not already in the
// agent. With IdentitiesOnly, agent keys are used only when they match an
// identity file.
func (a *authenticator) addKeySteps() {
	h := a.h
	type fileKey struct {
		path   string
		pub    xssh.PublicKey // nil when unknown until decrypted
		signer xssh.Signer    // nil when encrypted
		raw    []byte
	}
	var files []fileKey
	for _, p := range h.identities {
		raw, err := os.ReadFile(p)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				a.log.Warn("cannot read identity file", "file", p, "error", pathErr(err))
			}
			continue
		}
		fk := fileKey{path: p, raw: raw}
		a.keys.mu.Lock()
		cached := a.keys.signers[p]
		a.keys.mu.Unlock()
		if cached != nil {
			fk.signer, fk.pub = cached, cached.PublicKey()
		} else if s, err := xssh.ParsePrivateKey(raw); err == nil {
			fk.signer, fk.pub = s, s.PublicKey()
		} else {
			var pm *xssh.PassphraseMissingError
			if !errors.As(err, &pm) {
				a.log.Warn("cannot parse identity file", "file", p, "error", oneLine(err.Error()))
				continue
			}
			fk.pub = pm.PublicKey
			if fk.pub == nil {
				if b, err := os.ReadFile(p + ".pub"); err == nil {
					fk.pub, _, _, _, _ = xssh.ParseAuthorizedKey(b)
				}
			}
		}
		files = append(files, fk)
	}

	var agentKeys [][]byte
	if signers, comments := a.agentSigners(); len(signers) > 0 {
		for i, s := range signers {
			blob := s.PublicKey().Marshal()
			if h.identitiesOnly && !slices.ContainsFunc(files, func(f fileKey) bool {
				return f.pub != nil && bytes.Equal(f.pub.Marshal(), blob)
			}) {
				continue
			}
			agentKeys = append(agentKeys, blob)
			s := s
			a.steps = append(a.steps, authStep{method: "publickey", source: "agent: " + comments[i],
				make: func() xssh.AuthMethod { return xssh.PublicKeys(s) }})
		}
	}
	for _, f := range files {
		if f.pub != nil && slices.ContainsFunc(agentKeys, func(b []byte) bool { return bytes.Equal(b, f.pub.Marshal()) }) {
			continue
		}
		f := f
		switch {
		case f.signer != nil:
			a.steps = append(a.steps, authStep{method: "publickey", source: f.path,
				make: func() xssh.AuthMethod { return xssh.PublicKeys(f.signer) }})
		case f.pub != nil:
			// The server is asked about the public key first; the
			// passphrase is asked for only if it would accept it.
			ls := &lazySigner{a: a, path: f.path, raw: f.raw, pub: f.pub}
			a.steps = append(a.steps, authStep{method: "publickey", source: f.path,
				make: func() xssh.AuthMethod { return xssh.PublicKeys(ls) }})
		default:
			a.steps = append(a.steps, authStep{method: "publickey", source: f.path,
				make: func() xssh.AuthMethod {
					return xssh.PublicKeysCallback(func() ([]xssh.Signer, error) {
						s, err := a.decrypt(f.path, f.raw)
						if err != nil {
							return nil, err
						}
						return []xssh.Signer{s}, nil
					})
				}})
		}
	}
}

// agentSigners returns the agent's keys, or nothing when there is no agent.
func (a *authenticator) agentSigners() ([]xssh.Signer, []string) {
	sock := a.h.identityAgent
	if sock == "none" {
		return nil, nil
	}
	if sock == "" {
		sock = os.Getenv("SSH_AUTH_SOCK")
	}
	if sock == "" {
		return nil, nil
	}
	// The agent is on this machine whatever the parent is: the plugin
	// runs where spore runs, like ssh -J.
	c, err := net.Dial("unix", sock)
	if err != nil {
		a.log.Debug("ssh-agent not reachable", "socket", sock, "error", err)
		return nil, nil
	}
	ag := agent.NewClient(c)
	keys, err := ag.List()
	if err != nil {
		c.Close()
		a.log.Debug("ssh-agent list failed", "error", err)
		return nil, nil
	}
	signers, err := ag.Signers()
	if err != nil || len(signers) != len(keys) {
		c.Close()
		return nil, nil
	}
	a.agentConn = c
	comments := make([]string, len(keys))
	for i, k := range keys {
		comments[i] = k.Comment
		if comments[i] == "" {
			comments[i] = xssh.FingerprintSHA256(k)
		}
	}
	return signers, comments
}

// decrypt asks for the passphrase of an encrypted identity file, up to
// three times.
func (a *authenticator) decrypt(path string, raw []byte) (xssh.Signer, error) {
	a.keys.mu.Lock()
	defer a.keys.mu.Unlock()
	if s := a.keys.signers[path]; s != nil {
		return s, nil
	}
	if a.h.batch {
		return nil, errors.New("key is encrypted and BatchMode is on")
	}
	for try := 0; try < 3; try++ {
		pass, err := a.prompter.Prompt(a.ctx, sdk.Prompt{
			Key:     "passphrase",
			Message: fmt.Sprintf("Enter passphrase for key '%s': ", path),
			Secret:  true,
			Retry:   try > 0,
		})
		if err != nil {
			a.promptErr = err
			return nil, err
		}
		s, err := xssh.ParsePrivateKeyWithPassphrase(raw, []byte(pass))
		if err == nil {
			if a.keys.signers == nil {
				a.keys.signers = map[string]xssh.Signer{}
			}
			a.keys.signers[path] = s
			return s, nil
		}
		if !errors.Is(err, x509.IncorrectPasswordError) {
			a.log.Warn("cannot decrypt identity file", "file", path, "error", oneLine(err.Error()))
			return nil, err
		}
		a.log.Info("incorrect passphrase", "file", path)
	}
	return nil, fmt.Errorf("%s: incorrect passphrase", path)
}

// lazySigner is an encrypted identity whose public key is known: it is
// decrypted only when the server has accepted the public key.
type lazySigner struct {
	a    *authenticator
	path string
	raw  []byte
	pub  xssh.PublicKey
}

func (l *lazySigner) PublicKey() xssh.PublicKey { return l.pub }

func (l *lazySigner) Sign(rand io.Reader, data []byte) (*xssh.Signature, error) {
	s, err := l.a.decrypt(l.path, l.raw)
	if err != nil {
		return nil, err
	}
	return s.Sign(rand, data)
}

func (l *lazySigner) SignWithAlgorithm(rand io.Reader, data []byte, algorithm string) (*xssh.Signature, error) {
	s, err := l.a.decrypt(l.path, l.raw)
	if err != nil {
		return nil, err
	}
	if as, ok := s.(xssh.AlgorithmSigner); ok {
		return as.SignWithAlgorithm(rand, data, algorithm)
	}
	return s.Sign(rand, data)
}

// passwordPrompt asks for the server password. A jump host's password is
// asked under another key, so that the target's password_env= or
// password_file= is never sent to a jump host.
func (a *authenticator) passwordPrompt(message string) (string, error) {
	key := "password"
	if a.jump {
		key = "jump-password"
	}
	ans, err := a.prompter.Prompt(a.ctx, sdk.Prompt{Key: key, Message: message, Secret: true, Retry: a.passwordGiven})
	if err != nil {
		a.promptErr = err
		return "", err
	}
	a.passwordGiven = true
	return ans, nil
}

func (a *authenticator) passwordMethod() xssh.AuthMethod {
	return xssh.PasswordCallback(func() (string, error) {
		return a.passwordPrompt(fmt.Sprintf("%s@%s's password: ", a.h.user, a.h.alias))
	})
}

func (a *authenticator) kbdMethod() xssh.AuthMethod {
	return xssh.KeyboardInteractive(func(name, instruction string, questions []string, echos []bool) ([]string, error) {
		answers := make([]string, len(questions))
		for i, q := range questions {
			if !echos[i] && strings.Contains(strings.ToLower(q), "password") {
				ans, err := a.passwordPrompt(fmt.Sprintf("%s@%s's %s", a.h.user, a.h.alias, strings.TrimLeft(lowerFirst(q), " ")))
				if err != nil {
					return nil, err
				}
				answers[i] = ans
				continue
			}
			msg := q
			if instruction = strings.TrimSpace(instruction); instruction != "" {
				msg = instruction + "\n" + q
			}
			key := "keyboard-interactive"
			if a.jump {
				key = "jump-keyboard-interactive"
			}
			ans, err := a.prompter.Prompt(a.ctx, sdk.Prompt{Key: key, Message: fmt.Sprintf("(%s@%s) %s", a.h.user, a.h.alias, msg), Secret: !echos[i]})
			if err != nil {
				a.promptErr = err
				return nil, err
			}
			answers[i] = ans
		}
		return answers, nil
	})
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// failure turns a failed authentication into the error a person can act on.
func (a *authenticator) failure(err error) error {
	methods := strings.Join(a.tried, ",")
	if a.promptErr != nil {
		var se *sdk.Error
		if errors.As(a.promptErr, &se) && se.Kind == sdk.KindPromptUnavailable {
			return &sdk.Error{Kind: sdk.KindPromptUnavailable,
				Msg: fmt.Sprintf("authentication to %s needs a secret and nobody can be asked (tried %s): "+
					"use password_env= or password_file=, an ssh-agent, or an unencrypted identity", a.h.display(), orNone(methods)),
				Detail: map[string]string{"methods": methods}, Err: a.promptErr}
		}
		if errors.As(a.promptErr, &se) && se.Kind != sdk.KindUnknown {
			// The host's own verdict: "the password from password_env=
			// was refused" (incorrect-password), a bad password_file=.
			return &sdk.Error{Kind: se.Kind,
				Msg:    fmt.Sprintf("authentication to %s failed (tried %s): %s", a.h.display(), orNone(methods), se.Msg),
				Detail: map[string]string{"methods": methods}, Err: a.promptErr}
		}
		if a.ctx.Err() == nil && !errors.Is(a.promptErr, context.Canceled) {
			e := &sdk.Error{Kind: sdk.KindAuth,
				Msg:    fmt.Sprintf("authentication to %s failed: asking for a secret: %s", a.h.display(), oneLine(a.promptErr.Error())),
				Detail: map[string]string{"methods": methods}, Err: a.promptErr}
			return e
		}
	}
	hint := "check the user name, identity=, the agent's keys or the password"
	if len(a.tried) == 0 {
		hint = "no method the server accepts was available (no agent key or identity file found, password prompts off)"
	}
	e := &sdk.Error{Kind: sdk.KindAuth,
		Msg:    fmt.Sprintf("permission denied for %s (tried %s): %s", a.h.display(), orNone(methods), hint),
		Detail: map[string]string{"methods": methods}, Err: err}
	if len(a.identities) > 0 {
		e.Detail["identities"] = strings.Join(a.identities, ",")
	}
	if s := serverDisconnect(err); s != "" {
		e.Msg += " (server said: " + s + ")"
	}
	return e
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// serverDisconnect returns the server's disconnect message, if err is one.
func serverDisconnect(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if i := strings.Index(s, "ssh: disconnect, reason"); i >= 0 {
		s = s[i:]
		if j := strings.Index(s, ": "); j >= 0 {
			m := oneLine(s[j+2:])
			if u, err := strconv.Unquote(m); err == nil {
				m = u
			}
			return m
		}
	}
	return ""
}
