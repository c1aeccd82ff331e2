package main

import (
	"github.com/sporehq/spore/plugins/docker"
	"github.com/sporehq/spore/sdk"
)

func main() { sdk.Serve(docker.New()) }
