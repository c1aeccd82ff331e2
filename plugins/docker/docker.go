package docker

import (
	"context"
	"regexp"
	"strings"

	"github.com/sporehq/spore/sdk"
)

// DefaultCLI is the docker CLI run when the hop names no docker= option.
const DefaultCLI = "docker"

// Transport is the docker transport. It keeps no state between hops and is
// safe for concurrent use.
type Transport struct{}

// New returns the docker transport.
func New() *Transport { return &Transport{} }

// Info declares the transport: scheme docker, its options, and not the same
// host as its parent (a container has its own filesystem and interpreters).
func (*Transport) Info() sdk.Info {
	return sdk.Info{
		Name:     "docker",
		Protocol: sdk.ProtocolVersion,
		Options: []sdk.Option{
			{Name: "user", Help: "user inside the container (docker exec -u): NAME, UID, NAME:GROUP or UID:GID", Default: "the image's user"},
			{Name: "workdir", Help: "working directory inside the container (docker exec -w)", Default: "the image's"},
			{Name: "env", Help: "extra environment inside the container: KEY=VAL[,KEY=VAL...] (visible in ps; no secrets)"},
			{Name: "docker", Help: "docker CLI to run where the parent is", Default: DefaultCLI},
			{Name: "host", Help: "engine the docker CLI talks to (its DOCKER_HOST), e.g. unix:///run/user/1000/docker.sock", Default: "the CLI's own"},
		},
	}
}

// Open runs `docker exec -i [-u USER] [-w DIR] [-e KEY=VAL...] CONTAINER`
// followed by the boot command, where the parent is.
func (*Transport) Open(ctx context.Context, req *sdk.OpenRequest) (*sdk.Stream, error) {
	spec, err := parseHop(req.Hop)
	if err != nil {
		return nil, err
	}
	sr := sdk.SpawnRequest{Argv: append(spec.execArgv(), req.Argv...)}
	if spec.host != "" {
		sr.Env = []string{"DOCKER_HOST=" + spec.host}
	}
	if req.Log != nil {
		req.Log.Debug("docker exec", "container", spec.container, "user", spec.user, "workdir", spec.workdir, "docker", spec.cli, "host", spec.host)
	}
	if req.Phase != nil {
		req.Phase("exec")
	}
	p, err := req.Parent.Spawn(ctx, sr)
	if err != nil {
		if sdk.KindOf(err) == sdk.KindNotFound {
			where := "on this machine"
			if !req.Parent.Local() {
				where = "where the parent hop runs"
			}
			e := sdk.Errorf(sdk.KindUnavailable, "docker CLI %q not found %s (install docker, or name it with ?docker=PATH)", spec.cli, where)
			e.Err = err
			return nil, e.WithDetail("docker", spec.cli)
		}
		return nil, err
	}
	return &sdk.Stream{Process: p}, nil
}

// hopSpec is a validated docker hop.
type hopSpec struct {
	container string
	user      string
	workdir   string
	env       []string
	cli       string
	host      string
}

// execArgv is the docker exec command line, up to and including the
// container.
func (s *hopSpec) execArgv() []string {
	argv := []string{s.cli, "exec", "-i"}
	if s.user != "" {
		argv = append(argv, "-u", s.user)
	}
	if s.workdir != "" {
		argv = append(argv, "-w", s.workdir)
	}
	for _, kv := range s.env {
		argv = append(argv, "-e", kv)
	}
	return append(argv, s.container)
}

// containerName matches what docker accepts as a container name or id.
var containerName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// envKey matches the start of a KEY=VAL entry.
var envKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

func badTarget(format string, args ...any) *sdk.Error {
	return sdk.Errorf(sdk.KindBadTarget, format, args...)
}

// parseHop checks a hop's container and options.
func parseHop(h sdk.Hop) (*hopSpec, error) {
	s := &hopSpec{container: h.Host, cli: DefaultCLI}
	switch {
	case h.Host == "":
		return nil, badTarget("docker:// needs a container: docker://NAME or docker://ID")
	case !containerName.MatchString(h.Host):
		return nil, badTarget("%q is not a container name or id (letters, digits, _ . -; not starting with - . or _)", h.Host)
	case h.Port != 0:
		return nil, badTarget("docker://%s:%d: a container has no port; use docker://CONTAINER", h.Host, h.Port)
	}
	s.user = h.Options["user"]
	if h.User != "" {
		if s.user != "" && s.user != h.User {
			return nil, badTarget("docker://%s@%s names user %q and ?user=%s; give one", h.User, h.Host, h.User, s.user)
		}
		s.user = h.User
	}
	if v, ok := h.Options["user"]; ok && v == "" {
		return nil, badTarget("user= is empty; name a user of the container, or leave it out")
	}
	if v, ok := h.Options["workdir"]; ok {
		if v == "" {
			return nil, badTarget("workdir= is empty; name a directory in the container, or leave it out")
		}
		s.workdir = v
	}
	if v, ok := h.Options["docker"]; ok {
		if v == "" {
			return nil, badTarget("docker= is empty; name the docker CLI, or leave it out")
		}
		s.cli = v
	}
	s.host = h.Options["host"]
	if v, ok := h.Options["env"]; ok {
		env, err := splitEnv(v)
		if err != nil {
			return nil, err
		}
		s.env = env
	}
	return s, nil
}

// splitEnv splits env=KEY=VAL,KEY=VAL. A comma not followed by KEY= is part
// of the previous value.
func splitEnv(v string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(v, ",") {
		if envKey.MatchString(part) {
			out = append(out, part)
			continue
		}
		if len(out) == 0 {
			if part == "" && v == "" {
				return nil, badTarget("env= is empty; give KEY=VAL[,KEY=VAL...], or leave it out")
			}
			return nil, badTarget("env=%s: want KEY=VAL[,KEY=VAL...] (KEY: letters, digits, _)", v)
		}
		out[len(out)-1] += "," + part
	}
	return out, nil
}
