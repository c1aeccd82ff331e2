package docker

import (
	"context"
	"net"
	"reflect"
	"strings"
	"testing"

	"github.com/sporehq/spore/sdk"
)

func TestInfo(t *testing.T) {
	info := New().Info()
	if info.Name != "docker" || info.Protocol != sdk.ProtocolVersion || info.SameHost {
		t.Fatalf("info: %+v", info)
	}
	var names []string
	for _, o := range info.Options {
		if o.Help == "" {
			t.Errorf("option %s has no help", o.Name)
		}
		names = append(names, o.Name)
	}
	if want := []string{"user", "workdir", "env", "docker", "host"}; !reflect.DeepEqual(names, want) {
		t.Errorf("options %v, want %v", names, want)
	}
}

type fakeParent struct {
	got   sdk.SpawnRequest
	err   error
	local bool
}

func (p *fakeParent) Spawn(_ context.Context, req sdk.SpawnRequest) (*sdk.Process, error) {
	p.got = req
	if p.err != nil {
		return nil, p.err
	}
	return &sdk.Process{ID: "p1"}, nil
}

func (p *fakeParent) Dial(context.Context, string, string) (net.Conn, error) {
	return nil, sdk.Errorf(sdk.KindConnect, "no")
}

func (p *fakeParent) Local() bool { return p.local }

func TestOpenArgv(t *testing.T) {
	boot := []string{"python3", "-c", "LOADER", "B64", "docker:app", "123"}
	for _, tc := range []struct {
		hop     sdk.Hop
		want    []string
		wantEnv []string
	}{
		{sdk.Hop{Host: "app"}, []string{"docker", "exec", "-i", "app"}, nil},
		{sdk.Hop{Host: "app", Options: map[string]string{"user": "app", "workdir": "/srv", "env": "A=1,B=x,y,C_2=", "docker": "/opt/docker", "host": "tcp://h:2375"}},
			[]string{"/opt/docker", "exec", "-i", "-u", "app", "-w", "/srv", "-e", "A=1", "-e", "B=x,y", "-e", "C_2=", "app"}, []string{"DOCKER_HOST=tcp://h:2375"}},
		{sdk.Hop{User: "1000:1000", Host: "0123abcd"}, []string{"docker", "exec", "-i", "-u", "1000:1000", "0123abcd"}, nil},
		{sdk.Hop{User: "app", Host: "my_app.1", Options: map[string]string{"user": "app"}}, []string{"docker", "exec", "-i", "-u", "app", "my_app.1"}, nil},
	} {
		p := &fakeParent{local: true}
		st, err := New().Open(context.Background(), &sdk.OpenRequest{Hop: tc.hop, Argv: boot, Parent: p})
		if err != nil {
			t.Errorf("%+v: %v", tc.hop, err)
			continue
		}
		if st.Process == nil || st.Process.ID != "p1" || st.Conn != nil {
			t.Errorf("%+v: stream %+v", tc.hop, st)
		}
		if want := append(tc.want, boot...); !reflect.DeepEqual(p.got.Argv, want) {
			t.Errorf("%+v: argv\n got %q\nwant %q", tc.hop, p.got.Argv, want)
		}
		if !reflect.DeepEqual(p.got.Env, tc.wantEnv) || p.got.TTY || p.got.Dir != "" {
			t.Errorf("%+v: spawn %+v", tc.hop, p.got)
		}
	}
}

func TestOpenBadTarget(t *testing.T) {
	for _, hop := range []sdk.Hop{
		{},
		{Host: "-rm"},
		{Host: "app", Port: 22},
		{Host: "app", User: "a", Options: map[string]string{"user": "b"}},
		{Host: "app", Options: map[string]string{"user": ""}},
		{Host: "app", Options: map[string]string{"workdir": ""}},
		{Host: "app", Options: map[string]string{"docker": ""}},
		{Host: "app", Options: map[string]string{"env": ""}},
		{Host: "app", Options: map[string]string{"env": "novalue"}},
		{Host: "app", Options: map[string]string{"env": "1A=2"}},
		{Host: "app", Options: map[string]string{"env": ",A=2"}},
	} {
		p := &fakeParent{}
		_, err := New().Open(context.Background(), &sdk.OpenRequest{Hop: hop, Argv: []string{"python3"}, Parent: p})
		if sdk.KindOf(err) != sdk.KindBadTarget {
			t.Errorf("%+v: got %v, want bad-target", hop, err)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: more than one line: %q", hop, err)
		}
		if p.got.Argv != nil {
			t.Errorf("%+v: spawned %q", hop, p.got.Argv)
		}
	}
}

func TestOpenNoCLI(t *testing.T) {
	p := &fakeParent{err: sdk.Errorf(sdk.KindNotFound, "docker: command not found")}
	_, err := New().Open(context.Background(), &sdk.OpenRequest{Hop: sdk.Hop{Host: "app"}, Argv: []string{"python3"}, Parent: p})
	if sdk.KindOf(err) != sdk.KindUnavailable || !strings.Contains(err.Error(), `"docker"`) || !strings.Contains(err.Error(), "where the parent hop runs") {
		t.Fatalf("got %v", err)
	}
	p.err = sdk.Errorf(sdk.KindParentLost, "connection to web1 lost")
	if _, err := New().Open(context.Background(), &sdk.OpenRequest{Hop: sdk.Hop{Host: "app"}, Argv: []string{"python3"}, Parent: p}); sdk.KindOf(err) != sdk.KindParentLost {
		t.Fatalf("got %v, want parent-lost unchanged", err)
	}
}

// What docker 28 (CLI) and 20.10 (engine) print, captured by hand.
func TestClassify(t *testing.T) {
	const id = "ed226aaf7f027cdf87c23197d456d1280f96eeabb257e55e3c1239ab1dc7cf9a"
	for _, tc := range []struct {
		stderr string
		status int
		python string
		kind   sdk.Kind
		msg    string
	}{
		{"Error response from daemon: No such container: nosuch-xyz\n", 1, "python3", sdk.KindNoSuchContainer, `no such container "nosuch-xyz"`},
		{"Error response from daemon: Container " + id + " is not running\n", 1, "python3", sdk.KindNotRunning, "container ed226aaf7f02 is not running"},
		{"Error response from daemon: Container probe-py is paused, unpause the container before exec\n", 1, "python3", sdk.KindNotRunning, "docker unpause probe-py"},
		{"Cannot connect to the Docker daemon at unix:///nonexist.sock. Is the docker daemon running?\n", 1, "python3", sdk.KindUnavailable, "daemon at unix:///nonexist.sock: is dockerd"},
		{"Cannot connect to the Docker daemon at tcp://127.0.0.1:1. Is the docker daemon running?\n", 1, "python3", sdk.KindUnavailable, "at tcp://127.0.0.1:1:"},
		{"error during connect: Get \"http://x/v1.24/containers/a/json\": dial tcp: lookup x: no such host\n", 1, "python3", sdk.KindUnavailable, "cannot connect"},
		{`permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock: Get "http://%2Fvar%2Frun%2Fdocker.sock/v1.50/containers/probe-py/json": dial unix /var/run/docker.sock: connect: permission denied` + "\n", 1, "python3", sdk.KindPermission, "socket at unix:///var/run/docker.sock (join the docker group"},
		{`OCI runtime exec failed: exec failed: unable to start container process: exec: "python3": executable file not found in $PATH: unknown` + "\n", 126, "python3", sdk.KindNoPython, `no Python interpreter "python3" in the container (not found`},
		{`OCI runtime exec failed: exec failed: unable to start container process: exec: "platform-python": executable file not found in $PATH: unknown` + "\n", 127, "platform-python", sdk.KindNoPython, `"platform-python"`},
		{`OCI runtime exec failed: exec failed: unable to start container process: exec: "/usr/bin/python3": stat /usr/bin/python3: no such file or directory: unknown` + "\n", 126, "/usr/bin/python3", sdk.KindNoPython, `"/usr/bin/python3"`},
		{`OCI runtime exec failed: exec failed: unable to start container process: exec: "/etc/passwd": permission denied: unknown` + "\n", 126, "/etc/passwd", sdk.KindNoPython, "not executable"},
		{"Error: crun: executable file `python3` not found in $PATH: No such file or directory: OCI runtime attempted to invoke a command that was not found\n", 127, "python3", sdk.KindNoPython, `"python3"`},
		{"unable to find user nobodyx: no matching entries in passwd file\n", 126, "python3", sdk.KindBadTarget, `no user "nobodyx" in the container (fix ?user=`},
		{"unable to find group nogroupx: no matching entries in group file\n", 126, "python3", sdk.KindBadTarget, `no group "nogroupx"`},
		{`OCI runtime exec failed: exec failed: unable to start container process: chdir to cwd ("/nonexist") set in config.json failed: no such file or directory: unknown` + "\n", 126, "python3", sdk.KindBadTarget, `workdir "/nonexist" in the container: no such file or directory (fix ?workdir=)`},
		{`OCI runtime exec failed: exec failed: unable to start container process: chdir to cwd ("/etc/passwd") set in config.json failed: not a directory: unknown: Are you trying to mount a directory onto a file (or vice-versa)? Check if the specified host path exists and is the expected type` + "\n", 126, "python3", sdk.KindBadTarget, `workdir "/etc/passwd" in the container: not a directory`},
		{"sh: 1: docker: not found\n", 127, "python3", sdk.KindUnavailable, "docker CLI not found"},
		{"bash: line 1: /opt/bin/docker: No such file or directory\n", 127, "python3", sdk.KindUnavailable, "docker CLI not found"},
		{"Traceback (most recent call last):\nZeroDivisionError\n", 1, "python3", "", ""},
		{"", 0, "python3", "", ""},
	} {
		err := New().Classify(sdk.BootFailure{Stderr: []byte(tc.stderr), Exited: true, ExitStatus: tc.status, Python: tc.python})
		if tc.kind == "" {
			if err != nil {
				t.Errorf("%q: got %v, want nil", tc.stderr, err)
			}
			continue
		}
		if sdk.KindOf(err) != tc.kind {
			t.Errorf("%q: got %v (%s), want %s", tc.stderr, err, sdk.KindOf(err), tc.kind)
			continue
		}
		if !strings.Contains(err.Error(), tc.msg) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: message %q, want one line containing %q", tc.stderr, err, tc.msg)
		}
		if tc.kind == sdk.KindNoPython && err.(*sdk.Error).Detail["python"] != tc.python {
			t.Errorf("%q: detail %v", tc.stderr, err.(*sdk.Error).Detail)
		}
	}
}
