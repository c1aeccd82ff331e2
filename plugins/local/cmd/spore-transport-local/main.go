package main

import (
	"github.com/sporehq/spore/plugins/local"
	"github.com/sporehq/spore/sdk"
)

func main() { sdk.Serve(local.New()) }
