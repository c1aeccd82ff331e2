package ssh

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kevinburke/ssh_config"

	"github.com/sporehq/spore/sdk"
)

// Host key policies (the host_key option; StrictHostKeyChecking maps onto
// the first two).
const (
	hostKeyStrict    = "strict"
	hostKeyAcceptNew = "accept-new"
	hostKeyIgnore    = "insecure-ignore"
)

// options are the hop's own options, parsed.
type options struct {
	identity       string // expanded path, or ""
	knownHosts     string // expanded path, or ""
	hostKey        string // "" when not given
	jump           string // raw value; jumpSet tells whether it was given
	jumpSet        bool
	config         string // "" for the default files, "none", or a path
	connectTimeout time.Duration
	ctSet          bool
	keepalive      time.Duration
	kaSet          bool
}

func badOption(name, value, format string, args ...any) *sdk.Error {
	return sdk.Errorf(sdk.KindBadTarget, "ssh option %s=%s: %s", name, value, fmt.Sprintf(format, args...)).
		WithDetail("option", name)
}

// parseOptions checks and parses the hop's options. The host has already
// refused unknown ones; unknown names are ignored here so that the host's
// own shared options may pass through.
func parseOptions(m map[string]string) (*options, error) {
	o := &options{}
	if v, ok := m["identity"]; ok {
		if v == "" {
			return nil, badOption("identity", v, "needs the path of a private key")
		}
		p := expandTilde(v)
		if _, err := os.Stat(p); err != nil {
			return nil, badOption("identity", v, "%v", pathErr(err))
		}
		o.identity = p
	}
	if v, ok := m["known_hosts"]; ok {
		if v == "" {
			return nil, badOption("known_hosts", v, "needs a file path")
		}
		o.knownHosts = expandTilde(v)
	}
	if v, ok := m["host_key"]; ok {
		switch v {
		case hostKeyStrict, hostKeyAcceptNew, hostKeyIgnore:
			o.hostKey = v
		default:
			return nil, badOption("host_key", v, "must be strict, accept-new or insecure-ignore")
		}
	}
	if v, ok := m["jump"]; ok {
		if _, err := parseJumps(v); err != nil {
			return nil, badOption("jump", v, "%v", err)
		}
		o.jump, o.jumpSet = v, true
	}
	if v, ok := m["config"]; ok {
		if v == "" {
			return nil, badOption("config", v, "needs a file path, or none")
		}
		if v != "none" {
			v = expandTilde(v)
		}
		o.config = v
	}
	if v, ok := m["connect_timeout"]; ok {
		d, err := parseSeconds(v)
		if err != nil {
			return nil, badOption("connect_timeout", v, "%v", err)
		}
		o.connectTimeout, o.ctSet = d, true
	}
	if v, ok := m["keepalive"]; ok {
		d, err := parseSeconds(v)
		if err != nil {
			return nil, badOption("keepalive", v, "%v", err)
		}
		o.keepalive, o.kaSet = d, true
	}
	return o, nil
}

// parseSeconds reads "10" (seconds) or a Go duration ("1m30s").
func parseSeconds(v string) (time.Duration, error) {
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0, errors.New("must not be negative")
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, errors.New("must be a number of seconds")
	}
	return d, nil
}

func pathErr(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// sshConfig is the ssh_config files in force, first one first.
type sshConfig struct {
	files []*ssh_config.Config
	names []string
}

// loadConfig reads ~/.ssh/config and /etc/ssh/ssh_config, or only path
// (like ssh -F), or nothing for "none".
func loadConfig(path string) (*sshConfig, error) {
	c := &sshConfig{}
	if path == "none" {
		return c, nil
	}
	type cand struct {
		name     string
		optional bool
	}
	var cands []cand
	if path != "" {
		cands = []cand{{path, false}}
	} else {
		if h := homeDir(); h != "" {
			cands = append(cands, cand{filepath.Join(h, ".ssh", "config"), true})
		}
		cands = append(cands, cand{"/etc/ssh/ssh_config", true})
	}
	for _, cd := range cands {
		b, err := os.ReadFile(cd.name)
		if err != nil {
			if cd.optional && errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, sdk.Errorf(sdk.KindBadTarget, "ssh config %s: %s", cd.name, pathErr(err)).
				WithDetail("file", cd.name)
		}
		cfg, err := ssh_config.Decode(bytes.NewReader(b))
		if err != nil {
			return nil, sdk.Errorf(sdk.KindBadTarget,
				"ssh config %s: %v (spore reads it for ssh hops; fix it, or use config=PATH or config=none)",
				cd.name, oneLine(err.Error())).WithDetail("file", cd.name)
		}
		c.files = append(c.files, cfg)
		c.names = append(c.names, cd.name)
	}
	return c, nil
}

// get returns the first value of key for alias, as OpenSSH does.
func (c *sshConfig) get(alias, key string) string {
	for _, f := range c.files {
		if v, err := f.Get(alias, key); err == nil && v != "" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// getAll returns every value of key for alias, in order, from every file
// (IdentityFile accumulates).
func (c *sshConfig) getAll(alias, key string) []string {
	var all []string
	for _, f := range c.files {
		if v, err := f.GetAll(alias, key); err == nil {
			for _, s := range v {
				if s = strings.TrimSpace(s); s != "" {
					all = append(all, s)
				}
			}
		}
	}
	return all
}

// hostConf is everything needed to connect to one ssh server.
type hostConf struct {
	alias    string // the name as given
	hostName string // what is dialled
	port     int
	user     string

	identities     []string // expanded paths, in order
	identitiesOnly bool
	identityAgent  string // "" for $SSH_AUTH_SOCK, "none", or a path

	userKnownHosts   []string
	globalKnownHosts []string
	hostKeyMode      string
	hashKnownHosts   bool
	hostKeyAlias     string

	proxyJump    string
	proxyCommand string

	connectTimeout time.Duration
	aliveInterval  time.Duration
	aliveCountMax  int

	batch           bool
	pubkey          bool
	password        bool
	kbdInteractive  bool
	passwordPrompts int
}

// addr is host:port for dialling.
func (h *hostConf) addr() string {
	return net.JoinHostPort(h.hostName, strconv.Itoa(h.port))
}

// keyAddr is the name under which known_hosts holds the host's key.
func (h *hostConf) keyAddr() string {
	name := h.hostName
	if h.hostKeyAlias != "" {
		name = h.hostKeyAlias
	}
	return net.JoinHostPort(name, strconv.Itoa(h.port))
}

// display is user@host[:port] for messages.
func (h *hostConf) display() string {
	s := h.user + "@" + h.alias
	if h.port != 22 {
		s += ":" + strconv.Itoa(h.port)
	}
	return s
}

// resolve works out how to reach alias: the hop (or jump spec) gives user
// and port (0 = unset), ssh_config fills the rest, and the hop's options
// override both.
func (c *sshConfig) resolve(alias, userName string, port int, o *options) (*hostConf, error) {
	h := &hostConf{alias: alias, aliveCountMax: 3, passwordPrompts: 3,
		pubkey: true, password: true, kbdInteractive: true}
	get := func(k string) string { return c.get(alias, k) }
	bad := func(key, val, why string) error {
		return sdk.Errorf(sdk.KindBadTarget, "ssh config for %s: %s %s: %s", alias, key, val, why).WithDetail("option", key)
	}

	h.hostName = alias
	if v := get("HostName"); v != "" {
		h.hostName = expandTokens(v, map[byte]string{'h': alias})
	}
	h.port = port
	if h.port == 0 {
		if v := get("Port"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 || n > 65535 {
				return nil, bad("Port", v, "not a port number")
			}
			h.port = n
		} else {
			h.port = 22
		}
	}
	h.user = userName
	if h.user == "" {
		h.user = get("User")
	}
	if h.user == "" {
		h.user = localUser()
	}

	home := homeDir()
	tokens := map[byte]string{
		'd': home, 'h': h.hostName, 'n': alias, 'p': strconv.Itoa(h.port),
		'r': h.user, 'u': localUser(), 'i': strconv.Itoa(os.Getuid()),
	}
	if hn, err := os.Hostname(); err == nil {
		tokens['l'] = hn
		tokens['L'], _, _ = strings.Cut(hn, ".")
	}
	path := func(v string) string { return expandTilde(expandTokens(v, tokens)) }

	for _, v := range c.getAll(alias, "IdentityFile") {
		if strings.EqualFold(v, "none") {
			continue
		}
		h.identities = append(h.identities, path(v))
	}
	explicit := len(h.identities) > 0
	if o.identity != "" {
		h.identities = append([]string{o.identity}, h.identities...)
		explicit = true
	}
	if !explicit && home != "" {
		for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			h.identities = append(h.identities, filepath.Join(home, ".ssh", n))
		}
	}
	h.identities = dedupe(h.identities)

	var err error
	yes := func(key string, def bool) (bool, error) {
		v := get(key)
		switch strings.ToLower(v) {
		case "":
			return def, nil
		case "yes", "true":
			return true, nil
		case "no", "false":
			return false, nil
		}
		return def, bad(key, v, "must be yes or no")
	}
	if h.identitiesOnly, err = yes("IdentitiesOnly", false); err != nil {
		return nil, err
	}
	if h.hashKnownHosts, err = yes("HashKnownHosts", false); err != nil {
		return nil, err
	}
	if h.batch, err = yes("BatchMode", false); err != nil {
		return nil, err
	}
	if h.pubkey, err = yes("PubkeyAuthentication", true); err != nil {
		return nil, err
	}
	if h.password, err = yes("PasswordAuthentication", true); err != nil {
		return nil, err
	}
	kbdKey := "KbdInteractiveAuthentication"
	if get(kbdKey) == "" {
		kbdKey = "ChallengeResponseAuthentication"
	}
	if h.kbdInteractive, err = yes(kbdKey, true); err != nil {
		return nil, err
	}

	switch v := get("IdentityAgent"); {
	case v == "" || v == "SSH_AUTH_SOCK":
	case strings.EqualFold(v, "none"):
		h.identityAgent = "none"
	case strings.HasPrefix(v, "$"):
		h.identityAgent = os.Getenv(strings.TrimPrefix(v, "$"))
		if h.identityAgent == "" {
			h.identityAgent = "none"
		}
	default:
		h.identityAgent = path(v)
	}

	if o.knownHosts != "" {
		h.userKnownHosts = []string{o.knownHosts}
	} else if v := get("UserKnownHostsFile"); v != "" {
		for _, f := range strings.Fields(v) {
			if !strings.EqualFold(f, "none") {
				h.userKnownHosts = append(h.userKnownHosts, path(f))
			}
		}
	} else if home != "" {
		h.userKnownHosts = []string{filepath.Join(home, ".ssh", "known_hosts"), filepath.Join(home, ".ssh", "known_hosts2")}
	}
	if v := get("GlobalKnownHostsFile"); v != "" {
		for _, f := range strings.Fields(v) {
			if !strings.EqualFold(f, "none") {
				h.globalKnownHosts = append(h.globalKnownHosts, path(f))
			}
		}
	} else {
		h.globalKnownHosts = []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}
	}
	h.hostKeyAlias = get("HostKeyAlias")

	h.hostKeyMode = hostKeyStrict
	switch v := strings.ToLower(get("StrictHostKeyChecking")); v {
	case "", "yes", "ask", "true":
	case "accept-new", "no", "off", "false":
		// "no" would also let a changed key through in OpenSSH (with
		// restrictions); spore always refuses a changed key.
		h.hostKeyMode = hostKeyAcceptNew
	default:
		return nil, bad("StrictHostKeyChecking", v, "must be yes, ask, accept-new or no")
	}
	if o.hostKey != "" {
		h.hostKeyMode = o.hostKey
	}

	h.proxyJump = get("ProxyJump")
	h.proxyCommand = get("ProxyCommand")

	if v := get("ConnectTimeout"); v != "" && !strings.EqualFold(v, "none") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, bad("ConnectTimeout", v, "must be a number of seconds")
		}
		h.connectTimeout = time.Duration(n) * time.Second
	}
	if o.ctSet {
		h.connectTimeout = o.connectTimeout
	}
	if v := get("ServerAliveInterval"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, bad("ServerAliveInterval", v, "must be a number of seconds")
		}
		h.aliveInterval = time.Duration(n) * time.Second
	}
	if o.kaSet {
		h.aliveInterval = o.keepalive
	}
	if v := get("ServerAliveCountMax"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, bad("ServerAliveCountMax", v, "must be a number")
		}
		h.aliveCountMax = n
	}
	if v := get("NumberOfPasswordPrompts"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, bad("NumberOfPasswordPrompts", v, "must be a number")
		}
		h.passwordPrompts = n
	}
	return h, nil
}

// jumpSpec is one [user@]host[:port] of a ProxyJump chain.
type jumpSpec struct {
	user string
	host string
	port int
}

// parseJumps parses a ProxyJump value: comma-separated [user@]host[:port]
// or ssh://[user@]host[:port]. "none" (or "") is the empty chain.
func parseJumps(s string) ([]jumpSpec, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "none") {
		return nil, nil
	}
	var out []jumpSpec
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		part = strings.TrimPrefix(part, "ssh://")
		part = strings.TrimSuffix(part, "/")
		if part == "" {
			return nil, errors.New("empty host in the jump chain")
		}
		var j jumpSpec
		if i := strings.LastIndex(part, "@"); i >= 0 {
			j.user, part = part[:i], part[i+1:]
			if j.user == "" {
				return nil, errors.New("empty user before @")
			}
		}
		host := part
		if strings.HasPrefix(part, "[") && strings.HasSuffix(part, "]") {
			host = part[1 : len(part)-1]
		} else if strings.HasPrefix(part, "[") || strings.Count(part, ":") == 1 {
			h, p, err := net.SplitHostPort(part)
			if err != nil {
				return nil, fmt.Errorf("%q is not host[:port]", part)
			}
			n, err := strconv.Atoi(p)
			if err != nil || n <= 0 || n > 65535 {
				return nil, fmt.Errorf("%q: bad port", part)
			}
			host, j.port = h, n
		}
		if host == "" || strings.ContainsAny(host, " \t/@") {
			return nil, fmt.Errorf("%q is not a host name", part)
		}
		j.host = host
		out = append(out, j)
	}
	return out, nil
}

// expandTokens replaces ssh_config %-tokens; unknown ones are kept.
func expandTokens(s string, t map[byte]string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		if s[i] == '%' {
			b.WriteByte('%')
		} else if v, ok := t[s[i]]; ok {
			b.WriteString(v)
		} else {
			b.WriteByte('%')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// expandTilde expands ~ and ~user at the start of a path.
func expandTilde(p string) string {
	if !strings.HasPrefix(p, "~") {
		return p
	}
	name, rest, _ := strings.Cut(p[1:], "/")
	var home string
	if name == "" {
		home = homeDir()
	} else if u, err := user.Lookup(name); err == nil {
		home = u.HomeDir
	}
	if home == "" {
		return p
	}
	return filepath.Join(home, rest)
}

// homeDir is $HOME, else the passwd entry's home directory.
func homeDir() string {
	if h := os.Getenv("HOME"); h != "" {
		return h
	}
	if u, err := user.Current(); err == nil {
		return u.HomeDir
	}
	return ""
}

// localUser is the name of the user spore runs as.
func localUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return os.Getenv("LOGNAME")
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	out := s[:0]
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
