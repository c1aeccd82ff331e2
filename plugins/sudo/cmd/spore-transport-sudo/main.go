// Command spore-transport-sudo is spore's sudo transport plugin. The spore
// host starts it; it is not meant to be run by hand.
package main

import (
	"github.com/sporehq/spore/plugins/sudo"
	"github.com/sporehq/spore/sdk"
)

func main() { sdk.Serve(sudo.New()) }
