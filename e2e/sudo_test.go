package e2e

import (
	"testing"

	"github.com/sporehq/spore/internal/testenv"
)

func TestSudoSetupProbe(t *testing.T) {
	testenv.Sudo(t)
}
