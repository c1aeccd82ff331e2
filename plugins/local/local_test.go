package local_test

import (
	"testing"

	"github.com/sporehq/spore/plugins/local"
	"github.com/sporehq/spore/sdk"
	"github.com/sporehq/spore/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	sdktest.Run(t, local.New(), sdktest.Config{Hop: sdk.Hop{Scheme: "local"}, Python: "/usr/bin/python3"})
}
