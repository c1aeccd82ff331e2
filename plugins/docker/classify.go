package docker

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/sporehq/spore/sdk"
)

var (
	reNoSuchContainer = regexp.MustCompile(`(?i)no such container:?\s*(\S*)`)
	reNotRunning      = regexp.MustCompile(`(?i)container (\S+) is not running`)
	rePaused          = regexp.MustCompile(`(?i)container (\S+) is paused`)
	reDaemonAt        = regexp.MustCompile(`(?i)docker daemon(?: socket)? at (\S+?)[.:]?(?:\s|$)`)
	reUnknownUser     = regexp.MustCompile(`unable to find (user|group) ([^:\s]+)`)
	reChdir           = regexp.MustCompile(`chdir to cwd \("([^"]*)"\)[^:]*: ([^:]+)`)
	reCLINotFound     = regexp.MustCompile(`(?i)(\S*docker)"?:? (?:command not found|not found|executable file not found)`)
)

// Classify turns what docker exec printed before the boot markers into the
// transport's typed errors: no such container, not running (stopped or
// paused), engine unavailable or its socket not accessible, docker CLI
// missing, unknown user= or missing workdir=, and the container having no
// interpreter f.Python (KindNoPython, so python=auto tries the next one).
// It returns nil for anything else, leaving it to the host.
func (*Transport) Classify(f sdk.BootFailure) error {
	text := string(f.Stderr) + "\n" + string(f.Output)
	var e *sdk.Error
	switch {
	case strings.Contains(strings.ToLower(text), "no such container"):
		name := ""
		if m := reNoSuchContainer.FindStringSubmatch(text); m != nil && m[1] != "" {
			name = fmt.Sprintf(" %q", m[1])
		}
		e = sdk.Errorf(sdk.KindNoSuchContainer, "no such container%s on the docker engine (docker ps -a lists them; is DOCKER_HOST/?host= the right engine?)", name)
	case rePaused.MatchString(text):
		m := rePaused.FindStringSubmatch(text)
		e = sdk.Errorf(sdk.KindNotRunning, "container %s is paused (docker unpause %s)", shortID(m[1]), shortID(m[1]))
	case reNotRunning.MatchString(text):
		m := reNotRunning.FindStringSubmatch(text)
		e = sdk.Errorf(sdk.KindNotRunning, "container %s is not running (start it with docker start; docker ps -a shows its state)", shortID(m[1]))
	case strings.Contains(text, "permission denied while trying to connect to the Docker daemon"):
		e = sdk.Errorf(sdk.KindPermission, "permission denied on the Docker daemon socket%s (join the docker group, or go through sudo://root first)", daemonAt(text))
	case strings.Contains(text, "Cannot connect to the Docker daemon"),
		strings.Contains(text, "Is the docker daemon running?"),
		strings.Contains(text, "error during connect"):
		e = sdk.Errorf(sdk.KindUnavailable, "cannot connect to the Docker daemon%s: is dockerd running? (?host= picks another engine)", daemonAt(text))
	case reUnknownUser.MatchString(text):
		m := reUnknownUser.FindStringSubmatch(text)
		e = sdk.Errorf(sdk.KindBadTarget, "no %s %q in the container (fix ?user=: a name from its /etc/%s, or a number)", m[1], m[2], map[string]string{"user": "passwd", "group": "group"}[m[1]])
	case reChdir.MatchString(text):
		m := reChdir.FindStringSubmatch(text)
		e = sdk.Errorf(sdk.KindBadTarget, "workdir %q in the container: %s (fix ?workdir=)", m[1], strings.TrimSpace(m[2]))
	case noPython(text, f.Python):
		py := f.Python
		if py == "" {
			py = "python3"
		}
		what := "not found"
		if strings.Contains(text, "permission denied") {
			what = "not executable"
		}
		e = sdk.Errorf(sdk.KindNoPython, "no Python interpreter %q in the container (%s; install one in the image, or set ?python=PATH)", py, what)
		e.WithDetail("python", py)
	case cliMissing(text, f):
		e = sdk.Errorf(sdk.KindUnavailable, "docker CLI not found where the hop starts (install docker, or name it with ?docker=PATH)")
	default:
		return nil
	}
	if f.Exited {
		e.WithDetail("exit_status", strconv.Itoa(f.ExitStatus))
	}
	return e
}

// noPython reports whether docker exec said it could not start python: the
// runtime's "executable file not found in $PATH", or, for a path, "no such
// file or directory" / "permission denied" naming it.
func noPython(text, python string) bool {
	if python == "" {
		python = "python3"
	}
	base := path.Base(python)
	for _, l := range strings.Split(text, "\n") {
		if !strings.Contains(l, python) && !strings.Contains(l, base) {
			continue
		}
		low := strings.ToLower(l)
		if strings.Contains(low, "chdir to cwd") {
			continue
		}
		if strings.Contains(low, "executable file not found") || strings.Contains(low, "not found in $path") ||
			(strings.Contains(low, "exec") && (strings.Contains(low, "no such file or directory") || strings.Contains(low, "permission denied"))) {
			return true
		}
	}
	return false
}

// cliMissing reports whether the docker CLI itself could not be run (the
// parent's spawn normally reports that before anything runs; a wrapper
// shell says so on stderr with status 127).
func cliMissing(text string, f sdk.BootFailure) bool {
	if strings.Contains(text, "OCI runtime") {
		return false
	}
	if reCLINotFound.MatchString(text) {
		return true
	}
	low := strings.ToLower(text)
	return f.Exited && f.ExitStatus == 127 && strings.Contains(low, "docker") &&
		(strings.Contains(low, "not found") || strings.Contains(low, "no such file or directory"))
}

// daemonAt returns " at ADDRESS" from the CLI's message, or "".
func daemonAt(text string) string {
	if m := reDaemonAt.FindStringSubmatch(text); m != nil {
		return " at " + strings.TrimSuffix(m[1], ".")
	}
	return ""
}

// shortID shortens a 64-digit container id as docker ps does.
func shortID(s string) string {
	if len(s) == 64 && strings.Trim(s, "0123456789abcdef") == "" {
		return s[:12]
	}
	return s
}
