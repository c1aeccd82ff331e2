package main

import (
	"github.com/sporehq/spore/plugins/ssh"
	"github.com/sporehq/spore/sdk"
)

func main() { sdk.Serve(ssh.New()) }
