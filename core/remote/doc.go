// Package remote holds the Python that runs on targets — the first stage
// and the core — embedded into the host binary, and turns it into the boot
// command and the preamble.
//
// The first stage is minified, raw-deflated (no zlib header or checksum) and
// base64'd once per process: it is byte-identical for a given spore version,
// so it can be audited and allow-listed by hash. Everything that varies (the
// context name, the preamble length, the interpreter) travels as further
// argv entries.
package remote
