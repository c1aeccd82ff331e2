// Package docker is spore's docker transport: it runs the host's boot
// command inside a running container with `docker exec -i`, through the
// docker CLI of the hop's parent (sdk.Parent.Spawn). From the host that is
// this machine's docker; after an ssh hop (ssh://web1,docker://app) it is
// web1's docker, talking to web1's engine.
//
// A hop is docker://CONTAINER, where CONTAINER is a container's name or
// (a prefix of) its id. docker://USER@CONTAINER is short for
// docker://CONTAINER?user=USER. A port is refused.
//
// Options (?name=value, percent-encoded):
//
//	user     the user inside the container (docker exec -u): NAME, UID,
//	         NAME:GROUP or UID:GID; default: the image's user
//	workdir  the working directory inside the container (docker exec -w);
//	         default: the image's
//	env      extra environment inside the container: KEY=VAL entries
//	         separated by commas, env=A=1,B=2 (docker exec -e, once each).
//	         A comma that is not followed by KEY= belongs to the previous
//	         value, so env=PATH=/bin,LIST=a,b gives LIST the value "a,b".
//	         The host refuses an option given twice, so one env= carries
//	         them all. The values appear in the argv of the docker CLI
//	         (visible to ps where the parent runs): never put secrets here.
//	docker   the docker CLI to run where the parent is; default "docker"
//	host     the engine the CLI talks to, set as DOCKER_HOST for it
//	         (unix:///run/user/1000/docker.sock, tcp://10.0.0.5:2376,
//	         ssh://admin@vm); default: the CLI's own (DOCKER_HOST of the
//	         parent, its current docker context)
//
// The common options (python=, timeout=) are the host's. With python=auto
// the host tries python3, and only when the container has none does it try
// python, python2 and platform-python: Classify reports docker exec's
// "executable file not found in $PATH" as sdk.KindNoPython.
//
// Failures are *sdk.Error values with a Kind: KindNoSuchContainer,
// KindNotRunning (stopped or paused), KindUnavailable (no docker CLI where
// the parent is, or the engine does not answer), KindPermission (no access
// to the engine's socket), KindBadTarget (a bad option, an unknown user= or a
// missing workdir=), KindNoPython. Each has a one-line message saying what to
// do.
//
// The plugin binary is plugins/docker/cmd/spore-transport-docker.
package docker
