// Command spore runs commands, moves files, opens shells and runs Python on
// other machines through chains of connections — ssh, sudo, docker exec, a
// local fork — with nothing installed on the target but a Python
// interpreter. The Makefile builds it as bin/spore.
package main
