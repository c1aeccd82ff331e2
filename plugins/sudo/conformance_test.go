package sudo_test

import (
	"testing"

	"github.com/sporehq/spore/internal/testenv"
	"github.com/sporehq/spore/plugins/sudo"
	"github.com/sporehq/spore/sdk"
	"github.com/sporehq/spore/sdk/sdktest"
)

// Run as root, sudo to the test account asks for no password.
func TestConformance(t *testing.T) {
	testenv.Root(t)
	testenv.Sudo(t)
	users := testenv.TestUsers(t)
	sdktest.Run(t, sudo.New(), sdktest.Config{
		Hop:    sdk.Hop{Scheme: "sudo", Host: users.App.Name},
		Python: testenv.SystemPythonPath,
	})
}
