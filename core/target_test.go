package core

import (
	"reflect"
	"testing"
	"time"

	"github.com/sporehq/spore/sdk"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in   string
		want []Hop
	}{
		{"local://", []Hop{{Scheme: "local", Options: map[string]string{}, Python: "auto", Timeout: DefaultTimeout, Spec: "local://"}}},
		{"ssh://deploy@web1:2222?identity=~/.ssh/k&timeout=5", []Hop{{Scheme: "ssh", User: "deploy", Host: "web1", Port: 2222,
			Options: map[string]string{"identity": "~/.ssh/k"}, Python: "auto", Timeout: 5 * time.Second, Spec: "ssh://deploy@web1:2222"}}},
		{"ssh://web1,sudo://root?password_env=PW,docker://app?user=www&env=A%3D1,B%3D2", []Hop{
			{Scheme: "ssh", Host: "web1", Options: map[string]string{}, Python: "auto", Timeout: DefaultTimeout, Spec: "ssh://web1"},
			{Scheme: "sudo", Host: "root", Options: map[string]string{}, Python: "auto", Timeout: DefaultTimeout, PasswordEnv: "PW", Spec: "sudo://root"},
			{Scheme: "docker", Host: "app", Options: map[string]string{"user": "www", "env": "A=1,B=2"}, Python: "auto", Timeout: DefaultTimeout, Spec: "docker://app"},
		}},
		{"local://?python=/usr/bin/python2.7&timeout=1m", []Hop{{Scheme: "local", Options: map[string]string{}, Python: "/usr/bin/python2.7", Timeout: time.Minute, Spec: "local://"}}},
		{"ssh://[::1]:22", []Hop{{Scheme: "ssh", Host: "::1", Port: 22, Options: map[string]string{}, Python: "auto", Timeout: DefaultTimeout, Spec: "ssh://[::1]:22"}}},
	}
	for _, tt := range tests {
		got, err := ParseTarget(tt.in)
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseTargetErrors(t *testing.T) {
	for _, in := range []string{
		"", "web1", "://x", "ssh://deploy:secret@web1", "ssh://web1:99999", "local://?timeout=-1",
		"local://?timeout=soon", "local://?python=", "local://?a=1&a=2", "ssh://web1/path",
	} {
		if _, err := ParseTarget(in); sdk.KindOf(err) != sdk.KindBadTarget {
			t.Errorf("%q: err = %v, want bad-target", in, err)
		}
	}
}

func TestUnknownOptionRefused(t *testing.T) {
	hops, _ := ParseTarget("docker://app?usr=www")
	err := hops[0].checkOptions([]sdk.Option{{Name: "user"}})
	if sdk.KindOf(err) != sdk.KindBadTarget {
		t.Fatalf("err = %v", err)
	}
}

// An unknown option is refused before anything connects: the host fails
// before it starts a single process.
func TestUnknownOptionRefusedBeforeConnecting(t *testing.T) {
	h := newTestHost(t)
	_, err := h.Connect(testCtx(t), "local://,local://?nosuch=1")
	if sdk.KindOf(err) != sdk.KindBadTarget {
		t.Fatalf("err = %v", err)
	}
	if len(h.contexts) != 0 {
		t.Fatalf("%d contexts were opened", len(h.contexts))
	}
}
