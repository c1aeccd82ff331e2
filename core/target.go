package core

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sporehq/spore/sdk"
)

// DefaultTimeout is a hop's setup deadline when it names no timeout=.
const DefaultTimeout = 30 * time.Second

// CommonOptions are the options every hop accepts, whatever its transport.
var CommonOptions = []sdk.Option{
	{Name: "python", Help: "interpreter on the target: a path, or auto (python3, then python, python2, platform-python)", Default: "auto"},
	{Name: "timeout", Help: "this hop's setup deadline (Go duration or seconds), paused while a person is asked for a secret", Default: "30s"},
	{Name: "password_env", Help: "take this hop's password from the named environment variable of spore"},
	{Name: "password_file", Help: "take this hop's password from the first line of this file"},
}

// Hop is one parsed hop of a target: SCHEME://[user@]host[:port][?opt=val&...].
type Hop struct {
	Scheme string
	User   string
	Host   string
	Port   int
	// Options are the transport's own options.
	Options map[string]string
	// Python is the interpreter option ("auto" when not given).
	Python string
	// Timeout is the setup deadline.
	Timeout      time.Duration
	PasswordEnv  string
	PasswordFile string
	// Spec is the hop as written, without its options.
	Spec string
}

var hopStart = regexp.MustCompile(`,([A-Za-z][A-Za-z0-9+.-]*)://`)

// ParseTarget splits a target into hops. A comma starts a new hop only when
// SCHEME:// follows it, so option values may contain commas.
func ParseTarget(target string) ([]Hop, error) {
	target = strings.TrimSpace(target)
	if target == "" {
		return nil, sdk.Errorf(sdk.KindBadTarget, "empty target")
	}
	var parts []string
	for {
		loc := hopStart.FindStringIndex(target)
		if loc == nil {
			parts = append(parts, target)
			break
		}
		parts = append(parts, target[:loc[0]])
		target = target[loc[0]+1:]
	}
	hops := make([]Hop, 0, len(parts))
	for _, p := range parts {
		h, err := parseHop(p)
		if err != nil {
			return nil, err
		}
		hops = append(hops, h)
	}
	return hops, nil
}

func parseHop(s string) (Hop, error) {
	bad := func(format string, args ...any) error {
		return sdk.Errorf(sdk.KindBadTarget, "bad hop %q: "+format, append([]any{s}, args...)...)
	}
	i := strings.Index(s, "://")
	if i <= 0 {
		return Hop{}, bad("want SCHEME://[user@]host[:port][?option=value&...]")
	}
	u, err := url.Parse(s)
	if err != nil {
		return Hop{}, bad("%v", err)
	}
	if u.Path != "" && u.Path != "/" {
		return Hop{}, bad("unexpected path %q", u.Path)
	}
	h := Hop{Scheme: strings.ToLower(u.Scheme), Host: u.Hostname(), Options: map[string]string{}, Python: "auto", Timeout: DefaultTimeout}
	if u.User != nil {
		h.User = u.User.Username()
		if _, has := u.User.Password(); has {
			return Hop{}, bad("a password in the target would show in process listings; use password_env= or password_file=")
		}
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return Hop{}, bad("port %q", p)
		}
		h.Port = n
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Hop{}, bad("options: %v", err)
	}
	for k, vs := range q {
		if len(vs) != 1 {
			return Hop{}, bad("option %s given %d times", k, len(vs))
		}
		v := vs[0]
		switch k {
		case "python":
			if v == "" {
				return Hop{}, bad("python= needs a path or auto")
			}
			h.Python = v
		case "timeout":
			d, err := parseDuration(v)
			if err != nil {
				return Hop{}, bad("timeout=%s: %v", v, err)
			}
			h.Timeout = d
		case "password_env":
			h.PasswordEnv = v
		case "password_file":
			h.PasswordFile = v
		default:
			h.Options[k] = v
		}
	}
	h.Spec = h.Scheme + "://"
	if h.User != "" {
		h.Spec += h.User + "@"
	}
	h.Spec += u.Host
	return h, nil
}

func parseDuration(v string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if n <= 0 {
			return 0, fmt.Errorf("must be positive")
		}
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err == nil && d <= 0 {
		return 0, fmt.Errorf("must be positive")
	}
	return d, err
}

// checkOptions refuses options the transport did not declare.
func (h Hop) checkOptions(declared []sdk.Option) error {
	known := map[string]bool{}
	for _, o := range declared {
		known[o.Name] = true
	}
	var unknown []string
	for k := range h.Options {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	var names []string
	for _, o := range CommonOptions {
		names = append(names, o.Name)
	}
	for _, o := range declared {
		names = append(names, o.Name)
	}
	return sdk.Errorf(sdk.KindBadTarget, "%s: unknown option %s (known: %s)", h.Spec, strings.Join(unknown, ", "), strings.Join(names, ", "))
}

// shortName is the hop's part of a context name: "web1", "sudo:root".
func (h Hop) shortName() string {
	switch {
	case h.Scheme == "ssh" && h.Host != "":
		return h.Host
	case h.Host != "":
		return h.Scheme + ":" + h.Host
	default:
		return h.Scheme
	}
}
