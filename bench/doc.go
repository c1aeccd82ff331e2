// Package bench holds spore's benchmarks (make bench). Every speed target
// is reported as a ratio against a floor measured in the same run on the
// same machine — a bare interpreter start, a local pipe, a plain ssh
// client — never as an absolute time checked in a unit test.
package bench
