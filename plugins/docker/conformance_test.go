package docker_test

import (
	"testing"

	"github.com/sporehq/spore/internal/testenv"
	"github.com/sporehq/spore/plugins/docker"
	"github.com/sporehq/spore/sdk"
	"github.com/sporehq/spore/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	d := testenv.Docker(t)
	c := d.Container(t, d.PythonImage(t))
	sdktest.Run(t, docker.New(), sdktest.Config{
		Hop:    sdk.Hop{Scheme: "docker", Host: c},
		Python: "python3",
	})
}
