package ssh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	xssh "golang.org/x/crypto/ssh"

	"github.com/sporehq/spore/sdk"
)

// Transport is the ssh transport. The zero value is ready to use and safe
// for concurrent use.
type Transport struct{}

// New returns the ssh transport.
func New() sdk.Transport { return &Transport{} }

var (
	_ sdk.Transport  = (*Transport)(nil)
	_ sdk.Classifier = (*Transport)(nil)
)

// Info names the transport "ssh" and declares its options.
func (*Transport) Info() sdk.Info {
	return sdk.Info{
		Name:     "ssh",
		Protocol: sdk.ProtocolVersion,
		Options: []sdk.Option{
			{Name: "identity", Help: "private key file to try first (~ expanded), like ssh -i"},
			{Name: "known_hosts", Help: "known_hosts file to check and add host keys to, instead of UserKnownHostsFile", Default: "~/.ssh/known_hosts"},
			{Name: "host_key", Help: "host key policy: strict, accept-new (add unknown keys; a changed key is always refused) or insecure-ignore", Default: "strict (StrictHostKeyChecking)"},
			{Name: "jump", Help: "jump hosts, [user@]host[:port] comma-separated, like ssh -J; none ignores ProxyJump", Default: "ProxyJump from ssh_config"},
			{Name: "config", Help: "ssh_config file to read instead of ~/.ssh/config and /etc/ssh/ssh_config, like ssh -F; none reads none"},
			{Name: "connect_timeout", Help: "seconds to wait for the TCP connection and the server's greeting", Default: "ConnectTimeout, else none"},
			{Name: "keepalive", Help: "seconds between keepalives to the server; 0 turns them off", Default: "ServerAliveInterval, else 0"},
		},
	}
}

// Open connects to req.Hop (through its jump hosts) from req.Parent and
// starts req.Argv there as one shell command. The Stream's Conn is the
// command's stdin and stdout; it is a *Conn.
func (t *Transport) Open(ctx context.Context, req *sdk.OpenRequest) (*sdk.Stream, error) {
	log := req.Log
	if log == nil {
		log = hclog.NewNullLogger()
	}
	phase := req.Phase
	if phase == nil {
		phase = func(string) {}
	}
	if req.Parent == nil {
		return nil, sdk.Errorf(sdk.KindUnknown, "ssh: no parent to connect from")
	}
	if req.Hop.Host == "" {
		return nil, sdk.Errorf(sdk.KindBadTarget, "ssh needs a host: ssh://[user@]host[:port]")
	}
	if len(req.Argv) == 0 {
		return nil, sdk.Errorf(sdk.KindUnknown, "ssh: nothing to run")
	}
	opts, err := parseOptions(req.Hop.Options)
	if err != nil {
		return nil, err
	}
	cfg, err := loadConfig(opts.config)
	if err != nil {
		return nil, err
	}
	target, err := cfg.resolve(req.Hop.Host, req.Hop.User, req.Hop.Port, opts)
	if err != nil {
		return nil, err
	}
	jumpVal := target.proxyJump
	if opts.jumpSet {
		jumpVal = opts.jump
	}
	specs, err := parseJumps(jumpVal)
	if err != nil {
		return nil, sdk.Errorf(sdk.KindBadTarget, "ssh config for %s: ProxyJump %s: %v", req.Hop.Host, jumpVal, err)
	}
	if len(specs) == 0 && target.proxyCommand != "" && target.proxyCommand != "none" {
		return nil, sdk.Errorf(sdk.KindBadTarget,
			"ssh config for %s sets ProxyCommand, which spore does not run: use ProxyJump or jump=, or jump=none to connect directly", req.Hop.Host)
	}
	hops := make([]*hostConf, 0, len(specs)+1)
	for _, j := range specs {
		h, err := cfg.resolve(j.host, j.user, j.port, opts)
		if err != nil {
			return nil, err
		}
		hops = append(hops, h)
	}
	hops = append(hops, target)

	o := &opener{ctx: ctx, req: req, log: log, keys: &keyCache{}}
	var (
		clients   []*xssh.Client // jump hosts first, target last
		closeOnce sync.Once
	)
	closeAll := func() {
		closeOnce.Do(func() {
			for i := len(clients) - 1; i >= 0; i-- {
				_ = clients[i].Close()
			}
		})
	}

	phase("dial")
	first := hops[0]
	conn, err := o.dialParent(first)
	if err != nil {
		return nil, err
	}
	if len(hops) > 1 {
		phase("jump")
	}
	for i, h := range hops {
		if i > 0 {
			conn, err = o.dialThrough(clients[i-1], hops[i-1], h)
			if err != nil {
				closeAll()
				return nil, err
			}
		}
		last := i == len(hops)-1
		if last {
			phase("handshake")
		}
		c, err := o.connect(conn, h, !last, phase)
		if err != nil {
			closeAll()
			return nil, err
		}
		clients = append(clients, c)
		if h.aliveInterval > 0 {
			go keepalive(c, h.aliveInterval, h.aliveCountMax, log.With("host", h.addr()))
		}
	}

	phase("boot")
	client := clients[len(clients)-1]
	sc, err := startCommand(client, req.Argv, closeAll)
	if err != nil {
		closeAll()
		return nil, sdk.Errorf(sdk.KindConnect, "starting the boot command on %s: %v", target.display(), oneLine(err.Error()))
	}
	log.Debug("boot command started", "host", target.addr(), "user", target.user, "jumps", len(hops)-1)
	return &sdk.Stream{
		Conn:   sc,
		Stderr: sc.stderr,
		Close: func() error {
			closeAll()
			return nil
		},
	}, nil
}

// opener holds what one Open shares between its hops.
type opener struct {
	ctx  context.Context
	req  *sdk.OpenRequest
	log  hclog.Logger
	keys *keyCache
}

// dialParent opens the TCP connection to the first host from the parent.
func (o *opener) dialParent(h *hostConf) (net.Conn, error) {
	ctx := o.ctx
	if h.connectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.connectTimeout)
		defer cancel()
	}
	conn, err := o.req.Parent.Dial(ctx, "tcp", h.addr())
	if err != nil {
		return nil, o.dialError(h, "", err)
	}
	return conn, nil
}

// dialThrough opens a direct-tcpip channel to h through the jump client.
func (o *opener) dialThrough(jump *xssh.Client, via, h *hostConf) (net.Conn, error) {
	ctx := o.ctx
	if h.connectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.connectTimeout)
		defer cancel()
	}
	conn, err := jump.DialContext(ctx, "tcp", h.addr())
	if err != nil {
		return nil, o.dialError(h, via.display(), err)
	}
	return conn, nil
}

// connect runs the ssh handshake and authentication over conn.
func (o *opener) connect(conn net.Conn, h *hostConf, jump bool, phase func(string)) (*xssh.Client, error) {
	hk, err := newHostKeys(h, o.log)
	if err != nil {
		conn.Close()
		return nil, err
	}
	auth := newAuthenticator(o.ctx, h, o.req.Prompter, o.log.With("host", h.addr()), jump, o.keys)
	defer auth.close()

	var (
		hostKeyErr error
		authing    bool
	)
	if h.connectTimeout > 0 {
		_ = conn.SetDeadline(time.Now().Add(h.connectTimeout))
	}
	config := &xssh.ClientConfig{
		User:              h.user,
		HostKeyAlgorithms: hk.algorithms(),
		HostKeyCallback: func(host string, remote net.Addr, key xssh.PublicKey) error {
			if err := hk.check(host, remote, key); err != nil {
				hostKeyErr = err
				return err
			}
			// The greeting is over; a person may be asked for a
			// password from here, which the connect timeout must not cut.
			_ = conn.SetDeadline(time.Time{})
			authing = true
			if !jump {
				phase("auth")
			}
			return nil
		},
		AuthCallback:  auth.callback,
		ClientVersion: "SSH-2.0-spore",
		BannerCallback: func(msg string) error {
			o.log.Info("server banner", "host", h.addr(), "banner", msg)
			return nil
		},
	}
	stop := context.AfterFunc(o.ctx, func() { conn.Close() })
	c, chans, reqs, err := xssh.NewClientConn(conn, h.keyAddr(), config)
	stop()
	if err != nil {
		switch {
		case hostKeyErr != nil:
			return nil, hostKeyErr
		case o.ctx.Err() != nil:
			return nil, o.deadline(h, err)
		case authing:
			return nil, auth.failure(err)
		default:
			return nil, o.handshakeError(h, err)
		}
	}
	o.log.Debug("authenticated", "host", h.addr(), "user", h.user, "method", auth.lastMethod, "source", auth.lastSource)
	return xssh.NewClient(c, chans, reqs), nil
}

func (o *opener) deadline(h *hostConf, err error) error {
	e := sdk.Errorf(sdk.KindDeadline, "setup deadline passed while connecting to %s", h.display())
	if errors.Is(o.ctx.Err(), context.Canceled) {
		e = sdk.Errorf(sdk.KindClosed, "connecting to %s was cancelled", h.display())
	}
	e.Err = err
	return e
}

func (o *opener) handshakeError(h *hostConf, err error) error {
	var ne net.Error
	msg := oneLine(err.Error())
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		msg = fmt.Sprintf("%s did not finish the ssh greeting within %s (connect_timeout)", h.addr(), h.connectTimeout)
	case isEOF(err):
		msg = fmt.Sprintf("%s closed the connection during the ssh handshake: is it an ssh server? (or its MaxStartups / access rules refused us)", h.addr())
	default:
		msg = fmt.Sprintf("ssh handshake with %s failed: %s", h.addr(), msg)
	}
	return &sdk.Error{Kind: sdk.KindConnect, Msg: msg, Err: err, Detail: map[string]string{"address": h.addr()}}
}

func isEOF(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return errors.Is(err, net.ErrClosed) || containsAny(s, "EOF", "connection reset by peer", "broken pipe")
}

// keepalive sends keepalive@openssh.com every interval and closes c when
// max of them in a row go unanswered (ServerAliveCountMax).
func keepalive(c *xssh.Client, interval time.Duration, max int, log hclog.Logger) {
	if max <= 0 {
		max = 1
	}
	done := make(chan struct{})
	go func() { _ = c.Wait(); close(done) }()
	t := time.NewTicker(interval)
	defer t.Stop()
	replies := make(chan error, 1)
	pending, missed := false, 0
	for {
		select {
		case <-done:
			return
		case err := <-replies:
			pending = false
			if err == nil {
				missed = 0
			}
		case <-t.C:
			if pending {
				missed++
				if missed >= max {
					log.Warn("server stopped answering keepalives; closing the connection",
						"interval", interval.String(), "count", strconv.Itoa(max))
					_ = c.Close()
					return
				}
				continue
			}
			pending = true
			go func() {
				_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
				select {
				case replies <- err:
				case <-done:
				}
			}()
		}
	}
}
