package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/sporehq/spore/sdk"
	"github.com/sporehq/spore/sdk/rpc"
)

// hostService answers a plugin's calls to Parent and Prompter.
type hostService struct{ h *Host }

func (s *hostService) hop(id uint64) (*hopState, error) {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	hs := s.h.hops[id]
	if hs == nil {
		return nil, sdk.Errorf(sdk.KindClosed, "hop %d is not being opened", id)
	}
	return hs, nil
}

func (s *hostService) Spawn(ctx context.Context, req *rpc.SpawnRequest) (*rpc.SpawnResponse, error) {
	hs, err := s.hop(req.OpenID)
	if err != nil {
		return nil, err
	}
	hs.mark("spawn")
	sr := sdk.SpawnRequest(req.Req)
	var p proc
	if hs.parent == nil {
		lp, err := spawnLocal(sr, s.h.env())
		if err != nil {
			return nil, err
		}
		p = lp
	} else {
		rp, err := hs.parent.spawn(ctx, sr)
		if err != nil {
			return nil, err
		}
		p = rp
	}
	s.h.mu.Lock()
	s.h.nextID++
	id := "p" + strconv.FormatUint(s.h.nextID, 10)
	s.h.procs[id] = p
	s.h.mu.Unlock()
	hs.mu.Lock()
	hs.procs = append(hs.procs, p)
	hs.procIDs = append(hs.procIDs, id)
	hs.mu.Unlock()
	return &rpc.SpawnResponse{ProcessID: id, TTY: p.TTY() != nil}, nil
}

func (s *hostService) TTY(ctx context.Context, recv func() (*rpc.TTYChunk, error), send func(*rpc.TTYChunk) error) error {
	first, err := recv()
	if err != nil {
		return err
	}
	s.h.mu.Lock()
	p := s.h.procs[first.ProcessID]
	var hs *hopState
	for _, st := range s.h.hops {
		st.mu.Lock()
		for _, q := range st.procs {
			if q == p {
				hs = st
			}
		}
		st.mu.Unlock()
	}
	s.h.mu.Unlock()
	if p == nil || p.TTY() == nil {
		return sdk.Errorf(sdk.KindClosed, "no terminal for process %s", first.ProcessID)
	}
	tty := p.TTY()
	go func() {
		for {
			c, err := recv()
			if err != nil {
				return
			}
			if _, err := tty.Write(c.Data); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 4096)
	for {
		n, err := tty.Read(buf)
		if n > 0 {
			if hs != nil {
				_, _ = hs.tty.Write(buf[:n])
			}
			if serr := send(&rpc.TTYChunk{Data: append([]byte(nil), buf[:n]...)}); serr != nil {
				return nil
			}
		}
		if err != nil {
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

func (s *hostService) Dial(ctx context.Context, req *rpc.DialRequest) (*rpc.DialResponse, error) {
	hs, err := s.hop(req.OpenID)
	if err != nil {
		return nil, err
	}
	plugin := s.pluginFor(hs)
	if plugin == nil {
		return nil, sdk.Errorf(sdk.KindClosed, "no plugin for hop")
	}
	var f *os.File
	if hs.parent == nil {
		var d net.Dialer
		c, err := d.DialContext(ctx, req.Network, req.Address)
		if err != nil {
			return nil, dialError(req.Address, err)
		}
		fc, ok := c.(interface{ File() (*os.File, error) })
		if !ok {
			c.Close()
			return nil, fmt.Errorf("cannot pass a %s connection", req.Network)
		}
		f, err = fc.File()
		c.Close()
		if err != nil {
			return nil, err
		}
	} else {
		ch, err := hs.parent.dial(ctx, req.Network, req.Address)
		if err != nil {
			return nil, err
		}
		mine, theirs, err := unixPair()
		if err != nil {
			ch.Close()
			return nil, err
		}
		go relayChannel(mine, ch)
		f = theirs
	}
	defer f.Close()
	tok := plugin.fds.NewToken(false)
	if err := plugin.fds.Send(tok, f); err != nil {
		return nil, err
	}
	return &rpc.DialResponse{Token: tok}, nil
}

func (s *hostService) pluginFor(hs *hopState) *pluginClient {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	return s.h.plugins[hs.hop.Scheme]
}

func dialError(addr string, err error) error {
	msg := err.Error()
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		msg = fmt.Sprintf("cannot resolve %s: %s", dnsErr.Name, dnsErr.Err)
	case errors.Is(err, syscall.ECONNREFUSED):
		msg = fmt.Sprintf("connection to %s refused", addr)
	case errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err):
		msg = fmt.Sprintf("connection to %s timed out", addr)
	}
	return &sdk.Error{Kind: sdk.KindConnect, Msg: msg, Err: err}
}

func unixPair() (*net.UnixConn, *os.File, error) {
	fds, err := rpc.Socketpair(syscall.SOCK_STREAM)
	if err != nil {
		return nil, nil, err
	}
	f := os.NewFile(uintptr(fds[0]), "relay")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		syscall.Close(fds[1])
		return nil, nil, err
	}
	return c.(*net.UnixConn), os.NewFile(uintptr(fds[1]), "relay-plugin"), nil
}

// relayChannel copies between a local socket and a channel, passing
// half-closes both ways.
func relayChannel(sock *net.UnixConn, ch *Channel) {
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(sock, ch)
		_ = sock.CloseWrite()
		close(done)
	}()
	_, _ = io.Copy(ch, sock)
	_ = ch.CloseWrite()
	<-done
	_ = ch.Close()
	_ = sock.Close()
}

func (s *hostService) Prompt(ctx context.Context, req *rpc.PromptRequest) (*rpc.PromptResponse, error) {
	hs, err := s.hop(req.OpenID)
	if err != nil {
		return nil, err
	}
	ans, err := s.h.answer(ctx, hs, sdk.Prompt(req.Prompt))
	if err != nil {
		return nil, err
	}
	return &rpc.PromptResponse{Answer: ans}, nil
}

// answer resolves a prompt: password_env= and password_file= for a
// hop's password, then an earlier answer to the same question during this
// hop's setup, then a person.
func (h *Host) answer(ctx context.Context, hs *hopState, p sdk.Prompt) (string, error) {
	hop := hs.hop
	if p.Key == "password" && (hop.PasswordEnv != "" || hop.PasswordFile != "") {
		src := "password_env=" + hop.PasswordEnv
		if hop.PasswordEnv == "" {
			src = "password_file=" + hop.PasswordFile
		}
		if p.Retry {
			return "", sdk.Errorf(sdk.KindIncorrectPassword, "the password from %s was refused", src)
		}
		if hop.PasswordEnv != "" {
			v, ok := os.LookupEnv(hop.PasswordEnv)
			if !ok {
				return "", sdk.Errorf(sdk.KindBadTarget, "%s: the variable is not set", src)
			}
			return v, nil
		}
		b, err := os.ReadFile(expandHome(hop.PasswordFile))
		if err != nil {
			return "", sdk.Errorf(sdk.KindBadTarget, "%s: %v", src, err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		return strings.TrimSuffix(line, "\r"), nil
	}
	hs.cache.mu.Lock()
	if v, ok := hs.cache.m[p.Key]; ok && !p.Retry {
		hs.cache.mu.Unlock()
		return v, nil
	}
	hs.cache.mu.Unlock()
	if h.opts.Batch || h.opts.Ask == nil {
		hint := ""
		if p.Key == "password" {
			hint = " (give password_env= or password_file=)"
		}
		return "", sdk.Errorf(sdk.KindPromptUnavailable, "%s needs a %s and there is no terminal to ask on%s", hop.Spec, p.Key, hint)
	}
	resume := hs.clock.pause()
	v, err := h.opts.Ask(ctx, p)
	resume()
	if err != nil {
		return "", err
	}
	hs.cache.mu.Lock()
	if hs.cache.m == nil {
		hs.cache.m = map[string]string{}
	}
	hs.cache.m[p.Key] = v
	hs.cache.mu.Unlock()
	return v, nil
}

func expandHome(p string) string {
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return home + p[1:]
		}
	}
	return p
}

func (s *hostService) Phase(_ context.Context, req *rpc.PhaseRequest) (*rpc.Empty, error) {
	if hs, err := s.hop(req.OpenID); err == nil {
		hs.mark(req.Name)
	}
	return &rpc.Empty{}, nil
}
