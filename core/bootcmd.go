package core

import (
	"strings"

	"github.com/sporehq/spore/core/remote"
)

// BootArgvFor returns the boot command the last of hops would run: its
// python= option (python3 for auto) and the chain's context name.
func BootArgvFor(hops []Hop) []string {
	if len(hops) == 0 {
		return nil
	}
	var names []string
	for _, h := range hops {
		names = append(names, h.shortName())
	}
	last := hops[len(hops)-1]
	py := last.Python
	if py == "auto" || py == "" {
		py = "python3"
	}
	return remote.BootArgv(py, strings.Join(names, ","))
}

// ShellQuote quotes argv for a POSIX shell, quoting only what needs it.
func ShellQuote(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = quoteArg(a)
	}
	return strings.Join(out, " ")
}

func quoteArg(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}
