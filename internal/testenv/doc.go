// Package testenv provides the real services that spore's integration tests
// run against: the Python interpreters installed on the machine, an OpenSSH
// server on a private port, a set of local test users (with and without sudo
// rights, with and without Python on their PATH), and a Docker engine with
// two images built without any registry.
//
// Every helper takes a testing.TB. When a service is missing the test is
// skipped with a one-line reason, except under CI=true, where a missing
// service is a failure (see Need).
//
// Most helpers need root: they create system users, write
// /etc/sudoers.d/spore-test, start sshd and perhaps dockerd. State that must
// be stable across test binaries running at the same time (the users'
// passwords) lives in /var/lib/spore-test; per-process state (host keys, the
// client key, sshd's config and log) lives in /var/lib/spore-test/run/PID and
// is removed by Main, or by a later run once that process is gone.
//
// One sshd is shared by all the tests of a test binary. Without Main it is
// stopped when the last test using it finishes (and started again by the
// next one); with Main it lives until the binary exits:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// A typical test:
//
//	func TestSSHEcho(t *testing.T) {
//		srv := testenv.SSHD(t)
//		u := srv.Users.Test
//		knownHosts := srv.WriteKnownHosts(t)
//		// dial srv.Addr as u.Name with u.KeyFile or u.Password ...
//	}
//
// A dockerd started by Docker is left running for the test binaries that
// run after or beside this one; containers started by Container are removed
// when the test ends.
package testenv
