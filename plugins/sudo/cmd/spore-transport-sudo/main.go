package main

import (
	"github.com/sporehq/spore/plugins/sudo"
	"github.com/sporehq/spore/sdk"
)

func main() { sdk.Serve(sudo.New()) }
