package ssh

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	xssh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/sporehq/spore/sdk"
)

// knownHostsMu serialises appends to known_hosts files within this process.
var knownHostsMu sync.Mutex

// hostKeys checks one server's host key against known_hosts.
type hostKeys struct {
	h        *hostConf
	log      hclog.Logger
	files    []string // existing known_hosts files, user ones first
	callback xssh.HostKeyCallback
	known    []string // key types known_hosts holds for the host, in file order
}

// newHostKeys reads the known_hosts files for h.
func newHostKeys(h *hostConf, log hclog.Logger) (*hostKeys, error) {
	k := &hostKeys{h: h, log: log}
	for _, f := range append(append([]string(nil), h.userKnownHosts...), h.globalKnownHosts...) {
		if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() {
			k.files = append(k.files, f)
		}
	}
	if len(k.files) == 0 {
		return k, nil
	}
	cb, err := knownhosts.New(k.files...)
	if err != nil {
		return nil, sdk.Errorf(sdk.KindBadTarget, "reading known_hosts: %v", oneLine(err.Error()))
	}
	k.callback = cb
	// Ask with a key nobody holds: the KeyError lists every key known for
	// the host, which tells the types to prefer in the key exchange.
	probe, _ := xssh.NewPublicKey(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public())
	var ke *knownhosts.KeyError
	if err := cb(h.keyAddr(), dummyAddr(h), probe); errors.As(err, &ke) {
		for _, w := range ke.Want {
			if t := w.Key.Type(); !slices.Contains(k.known, t) {
				k.known = append(k.known, t)
			}
		}
	}
	return k, nil
}

// dummyAddr stands for the remote address: the conn from Parent.Dial may
// be a unix socket or an ssh channel, and knownhosts only needs its form.
func dummyAddr(h *hostConf) net.Addr {
	return &net.TCPAddr{IP: net.IPv4zero, Port: h.port}
}

// opensshOrder is OpenSSH's default HostKeyAlgorithms preference.
var opensshOrder = []string{
	xssh.CertAlgoED25519v01, xssh.CertAlgoECDSA256v01, xssh.CertAlgoECDSA384v01, xssh.CertAlgoECDSA521v01,
	xssh.CertAlgoRSASHA512v01, xssh.CertAlgoRSASHA256v01,
	xssh.KeyAlgoED25519, xssh.KeyAlgoECDSA256, xssh.KeyAlgoECDSA384, xssh.KeyAlgoECDSA521,
	xssh.KeyAlgoRSASHA512, xssh.KeyAlgoRSASHA256,
}

// algorithms returns the host key algorithms to offer: those of the key
// types known_hosts holds for the host first, as OpenSSH orders them (so a
// host known by its ed25519 key is not asked for its rsa one and reported
// changed), then the rest in OpenSSH's default order.
func (k *hostKeys) algorithms() []string {
	supported := xssh.SupportedAlgorithms().HostKeys
	var all []string
	for _, a := range opensshOrder {
		if slices.Contains(supported, a) {
			all = append(all, a)
		}
	}
	for _, a := range supported {
		if !slices.Contains(all, a) {
			all = append(all, a)
		}
	}
	var first []string
	for _, t := range k.known {
		for _, a := range all {
			if keyTypeOfAlgo(a) == t && !slices.Contains(first, a) {
				first = append(first, a)
			}
		}
	}
	for _, a := range all {
		if !slices.Contains(first, a) {
			first = append(first, a)
		}
	}
	return first
}

// keyTypeOfAlgo maps a host key algorithm to the key type known_hosts
// stores; certificate algorithms map to "".
func keyTypeOfAlgo(a string) string {
	switch a {
	case xssh.KeyAlgoRSASHA256, xssh.KeyAlgoRSASHA512, xssh.KeyAlgoRSA:
		return xssh.KeyAlgoRSA
	}
	if strings.Contains(a, "-cert-") {
		return ""
	}
	return a
}

// check is the HostKeyCallback.
func (k *hostKeys) check(_ string, _ net.Addr, key xssh.PublicKey) error {
	h := k.h
	fp := xssh.FingerprintSHA256(key)
	if h.hostKeyMode == hostKeyIgnore {
		k.log.Warn("host key not checked (host_key=insecure-ignore)", "host", h.keyAddr(), "fingerprint", fp)
		return nil
	}
	var err error
	if k.callback != nil {
		err = k.callback(h.keyAddr(), dummyAddr(h), key)
		if err == nil {
			return nil
		}
	} else {
		err = &knownhosts.KeyError{}
	}
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &re):
		where := fmt.Sprintf("%s:%d", re.Revoked.Filename, re.Revoked.Line)
		return sdk.Errorf(sdk.KindHostKeyChanged,
			"host key %s %s of %s is marked @revoked in %s: refusing to connect",
			key.Type(), fp, h.keyAddr(), where).
			WithDetail("fingerprint", fp).WithDetail("file", where)
	case errors.As(err, &ke) && len(ke.Want) == 0:
		if h.hostKeyMode == hostKeyAcceptNew {
			return k.add(key)
		}
		return k.unknown(key)
	case errors.As(err, &ke):
		// Prefer reporting a known key of the same type; any known key
		// of another type means the server no longer offers that one.
		want := ke.Want[0]
		for _, w := range ke.Want {
			if w.Key.Type() == key.Type() {
				want = w
				break
			}
		}
		where := fmt.Sprintf("%s:%d", want.Filename, want.Line)
		return sdk.Errorf(sdk.KindHostKeyChanged,
			"host key of %s has CHANGED: it offers %s %s but %s holds %s %s; this may be an attack. "+
				"If the change is expected, remove that line (ssh-keygen -R %s -f %s) and connect again",
			h.keyAddr(), key.Type(), fp, where, want.Key.Type(), xssh.FingerprintSHA256(want.Key),
			shellQuote([]string{knownhosts.Normalize(h.keyAddr())}), shellQuote([]string{want.Filename})).
			WithDetail("fingerprint", fp).
			WithDetail("known_fingerprint", xssh.FingerprintSHA256(want.Key)).
			WithDetail("file", where)
	default:
		return sdk.Errorf(sdk.KindHostKeyUnknown, "checking host key of %s: %v", h.keyAddr(), oneLine(err.Error())).
			WithDetail("fingerprint", fp)
	}
}

func (k *hostKeys) unknown(key xssh.PublicKey) error {
	h := k.h
	fp := xssh.FingerprintSHA256(key)
	file := "~/.ssh/known_hosts"
	if len(h.userKnownHosts) > 0 {
		file = h.userKnownHosts[0]
	}
	host, port, _ := net.SplitHostPort(h.keyAddr())
	scan := "ssh-keyscan"
	if port != "22" {
		scan += " -p " + port
	}
	scan += " " + shellQuote([]string{host}) + " >> " + shellQuote([]string{file})
	return sdk.Errorf(sdk.KindHostKeyUnknown,
		"host key of %s is not known (%s %s): check the fingerprint, then add it with `%s`, or connect once with host_key=accept-new",
		h.keyAddr(), key.Type(), fp, scan).
		WithDetail("fingerprint", fp).
		WithDetail("key_type", key.Type()).
		WithDetail("file", file)
}

// add appends key to the first user known_hosts file (accept-new).
func (k *hostKeys) add(key xssh.PublicKey) error {
	h := k.h
	fp := xssh.FingerprintSHA256(key)
	if len(h.userKnownHosts) == 0 {
		return sdk.Errorf(sdk.KindHostKeyUnknown,
			"host key of %s is not known (%s %s) and there is no known_hosts file to add it to (UserKnownHostsFile none): set known_hosts=PATH",
			h.keyAddr(), key.Type(), fp).WithDetail("fingerprint", fp)
	}
	file := h.userKnownHosts[0]
	name := knownhosts.Normalize(h.keyAddr())
	if h.hashKnownHosts {
		name = knownhosts.HashHostname(name)
	}
	line := name + " " + strings.TrimSpace(string(xssh.MarshalAuthorizedKey(key))) + "\n"

	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	fail := func(err error) error {
		return sdk.Errorf(sdk.KindHostKeyUnknown, "host key of %s is not known (%s %s) and could not be added to %s: %s",
			h.keyAddr(), key.Type(), fp, file, pathErr(err)).WithDetail("fingerprint", fp).WithDetail("file", file)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fail(err)
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			line = "\n" + line
		}
	}
	if _, err := f.WriteString(line); err != nil {
		return fail(err)
	}
	k.log.Info("added host key to known_hosts (host_key=accept-new)",
		"host", h.keyAddr(), "type", key.Type(), "fingerprint", fp, "file", file)
	return nil
}
