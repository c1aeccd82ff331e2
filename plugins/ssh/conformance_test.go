package ssh_test

import (
	"testing"

	"github.com/sporehq/spore/internal/testenv"
	sshtransport "github.com/sporehq/spore/plugins/ssh"
	"github.com/sporehq/spore/sdk"
	"github.com/sporehq/spore/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	srv := testenv.SSHD(t)
	kh := srv.WriteKnownHosts(t)
	sdktest.Run(t, sshtransport.New(), sdktest.Config{
		Hop: sdk.Hop{Scheme: "ssh", User: srv.Users.Test.Name, Host: srv.Host, Port: srv.Port,
			Options: map[string]string{"identity": srv.Users.Test.KeyFile, "known_hosts": kh, "config": "none"}},
		Python: testenv.SystemPythonPath,
	})
}
