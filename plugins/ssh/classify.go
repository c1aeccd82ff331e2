package ssh

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/sporehq/spore/sdk"
)

// maxStderr caps the stderr tail attached to an error.
const maxStderr = 2048

// Classify recognises, in what the remote login shell printed before the
// boot markers, that the interpreter could not be run: "python3: not found"
// (dash), "python3: command not found" (bash), "command not found: python3"
// (zsh), "Unknown command: python3" (fish), "No such file or directory"
// for a path, or exit status 127. It returns nil for anything else.
func (*Transport) Classify(f sdk.BootFailure) error {
	text := string(f.Stderr) + "\n" + string(f.Output) + "\n" + string(f.TTY)
	line := notFoundLine(text, f.Python)
	if line == "" && !(f.Exited && f.ExitStatus == 127) {
		return nil
	}
	py := f.Python
	if py == "" {
		py = "python3"
	}
	e := &sdk.Error{Kind: sdk.KindNoPython, Detail: map[string]string{"python": py}}
	if st := tail(f.Stderr); st != line {
		// More than the line quoted in Msg: keep it for the person.
		e.Stderr = st
	}
	if f.Exited {
		e.Detail["exit_status"] = strconv.Itoa(f.ExitStatus)
	}
	hint := "install Python on the target, or name an interpreter with python=PATH"
	if line != "" {
		e.Msg = fmt.Sprintf("no Python interpreter %q on the target: the remote shell said %q; %s", py, line, hint)
	} else {
		e.Msg = fmt.Sprintf("no Python interpreter %q on the target: the remote shell exited with status 127 (command not found); %s", py, hint)
	}
	return e
}

// notFoundLine returns the first line of text in which a shell says that
// the interpreter (or, when python is empty, some command) was not found.
func notFoundLine(text, python string) string {
	base := path.Base(python)
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(strings.TrimRight(l, "\r"))
		if l == "" {
			continue
		}
		low := strings.ToLower(l)
		if !containsAny(low, "not found", "no such file or directory", "unknown command", "command not found") {
			continue
		}
		if python == "" || strings.Contains(l, python) || (base != "." && base != "/" && strings.Contains(l, base)) {
			return l
		}
	}
	return ""
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > maxStderr {
		s = s[len(s)-maxStderr:]
	}
	return s
}
