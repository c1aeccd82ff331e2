package sudo

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/sporehq/spore/sdk"
)

// A rule turns one line sudo (or the parent's shell) printed into an error.
type rule struct {
	re   *regexp.Regexp
	kind sdk.Kind
	msg  func(m []string) string
	// quote attaches the line itself to the error (as its Stderr), for
	// lines short and clear enough to show.
	quote bool
}

// rules are sudo's final messages (sudo 1.8 and 1.9, LC_MESSAGES=C), most
// specific first. Each matches one line.
var rules = []rule{
	{regexp.MustCompile(`\d+ incorrect password attempts?`), sdk.KindIncorrectPassword,
		func([]string) string { return "incorrect password" }, true},
	{regexp.MustCompile(`is not in the sudoers file`), sdk.KindNotAllowed,
		func([]string) string { return "not allowed to use sudo here" }, true},
	{regexp.MustCompile(`user (\S+) is not allowed to execute .* as (\S+) on `), sdk.KindNotAllowed,
		func(m []string) string {
			return fmt.Sprintf("not allowed: sudoers does not let %s run the boot command as %s", m[1], m[2])
		}, false},
	{regexp.MustCompile(`user \S+ may not run sudo on `), sdk.KindNotAllowed,
		func([]string) string { return "not allowed to use sudo here" }, true},
	{regexp.MustCompile(`you must have a tty to run sudo`), sdk.KindNotAllowed,
		func([]string) string {
			return "not allowed: sudoers requires a terminal (Defaults requiretty) and the parent gave sudo none"
		}, true},
	{regexp.MustCompile(`not allowed to preserve the environment`), sdk.KindNotAllowed,
		func([]string) string { return "not allowed by sudoers" }, true},
	{regexp.MustCompile(`[Aa]ccount or password is expired|account validation failure|PAM account management error`), sdk.KindNotAllowed,
		func([]string) string { return "not allowed: sudo's account check failed" }, true},
	{regexp.MustCompile(`unknown user:? \S+`), sdk.KindBadTarget,
		func([]string) string { return "no such user to become" }, true},
	{regexp.MustCompile(`a terminal is required to read the password|no tty present and no askpass program`), sdk.KindUnavailable,
		func([]string) string { return "sudo wants a password and the parent gave it no terminal to ask on" }, true},
	{regexp.MustCompile(`effective uid is not 0|must be owned by uid 0 and have the setuid bit set|"no new privileges" flag is set`), sdk.KindUnavailable,
		func([]string) string {
			return "sudo cannot gain privileges here (not setuid root, a nosuid mount, or no_new_privs)"
		}, false},
	{regexp.MustCompile(`(?:^|[\s:])sudo: (?:command )?not found|(?:^|[\s:])sudo: No such file or directory|command not found: sudo`), sdk.KindUnavailable,
		func([]string) string { return "sudo is not installed where this hop starts" }, true},
}

// recognize returns the error for the first line of text that one of the
// rules matches, with that line in Detail["sudo"]; nil if none does.
func recognize(text string) *sdk.Error {
	for _, r := range rules {
		for _, line := range strings.Split(text, "\n") {
			line = strings.TrimSpace(strings.TrimRight(line, "\r"))
			if line == "" {
				continue
			}
			if m := r.re.FindStringSubmatch(line); m != nil {
				e := &sdk.Error{Kind: r.kind, Msg: r.msg(m)}
				if r.quote {
					e.Stderr = capLine(line)
				}
				return e.WithDetail("sudo", capLine(line))
			}
		}
	}
	return nil
}

func capLine(s string) string {
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// unableToExec matches sudo failing to run the interpreter.
var unableToExec = regexp.MustCompile(`sudo: unable to execute (\S+): (Permission denied|No such file or directory)`)

// Classify recognises sudo's own failures in what appeared before the boot
// markers (terminal, stderr, stdout): see the package documentation. It
// returns nil for anything else, leaving it to the host (no Python, the
// transport exited, deadline).
func (*Transport) Classify(f sdk.BootFailure) error {
	text := string(f.Stderr) + "\n" + string(f.TTY) + "\n" + string(f.Output)
	if e := recognize(text); e != nil {
		if f.Exited {
			e.WithDetail("exit_status", strconv.Itoa(f.ExitStatus))
		}
		return e
	}
	if m := unableToExec.FindStringSubmatch(text); m != nil {
		e := &sdk.Error{Kind: sdk.KindNoPython, Msg: fmt.Sprintf("the interpreter %s cannot be run as the target user (%s); set ?python=PATH", m[1], strings.ToLower(m[2])), Stderr: capLine(m[0])}
		return e.WithDetail("python", f.Python)
	}
	// The shell of a remote parent could not find sudo at all.
	if f.Exited && f.ExitStatus == 127 && !strings.Contains(text, f.Python) && strings.Contains(text, "sudo") {
		return &sdk.Error{Kind: sdk.KindUnavailable, Msg: "sudo is not installed where this hop starts (exit status 127)", Stderr: capLine(lastLine(string(f.Stderr)))}
	}
	// sudo said the password was wrong, then exited on its own.
	if f.Exited && f.ExitStatus == 1 && strings.Contains(string(f.TTY), "Sorry, try again") {
		return &sdk.Error{Kind: sdk.KindIncorrectPassword, Msg: "incorrect password: sudo refused it"}
	}
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
