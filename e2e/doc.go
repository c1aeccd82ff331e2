// Package e2e holds end-to-end tests: they build bin/spore and every
// transport plugin into a temporary directory, then drive them the way a
// user does — through the CLI and through the core API — against real
// interpreters, a real sshd, real sudo and a real Docker engine (see
// internal/testenv). It has no non-test code.
package e2e
