package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/sporehq/spore/sdk/rpc"
)

// Serve runs t as a plugin until the host goes away. Call it from main, and
// print nothing to stdout before it: stdout carries go-plugin's handshake.
func Serve(t Transport) {
	// Plugins inherit the host's stdin; never hold on to it.
	if devnull, err := os.Open(os.DevNull); err == nil {
		_ = syscall.Dup2(int(devnull.Fd()), 0)
		devnull.Close()
	}
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       "spore-transport-" + t.Info().Name,
		Level:      hclog.Trace,
		Output:     os.Stderr,
		JSONFormat: true,
	})
	srv := &server{t: t, log: logger, streams: map[uint64]*Stream{}}
	if v := os.Getenv(rpc.FDEnv); v != "" {
		if fd, err := strconv.Atoi(v); err == nil {
			if p, err := rpc.NewFDPass(os.NewFile(uintptr(fd), "fdpass")); err == nil {
				srv.fds = p
			} else {
				logger.Warn("fd socket unusable", "error", err)
			}
		}
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: plugin.HandshakeConfig(rpc.Handshake),
		Plugins:         plugin.PluginSet{rpc.PluginName: &grpcPlugin{srv: srv}},
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          logger,
	})
}

type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	srv *server
}

func (p *grpcPlugin) GRPCServer(b *plugin.GRPCBroker, s *grpc.Server) error {
	p.srv.broker = b
	rpc.RegisterTransport(s, p.srv)
	return nil
}

func (p *grpcPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("sdk: the plugin side has no client")
}

type server struct {
	t      Transport
	log    hclog.Logger
	broker *plugin.GRPCBroker
	fds    *rpc.FDPass

	mu      sync.Mutex
	host    *grpc.ClientConn
	streams map[uint64]*Stream
}

func (s *server) Info(context.Context, *rpc.Empty) (*rpc.InfoResponse, error) {
	info := s.t.Info()
	r := &rpc.InfoResponse{Name: info.Name, Protocol: info.Protocol, SameHost: info.SameHost}
	for _, o := range info.Options {
		r.Options = append(r.Options, rpc.OptionInfo{Name: o.Name, Help: o.Help, Default: o.Default, Secret: o.Secret})
	}
	return r, nil
}

func (s *server) Init(_ context.Context, req *rpc.InitRequest) (*rpc.Empty, error) {
	conn, err := s.broker.Dial(req.HostBroker)
	if err != nil {
		return nil, fmt.Errorf("dialing host service: %w", err)
	}
	s.mu.Lock()
	s.host = conn
	s.mu.Unlock()
	// Bring the connection up now, while the host gets ready to open a
	// hop, rather than on the first Spawn or Dial of a hop's setup.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rpc.Invoke(ctx, conn, rpc.MethodPhase, &rpc.PhaseRequest{}, &rpc.Empty{})
	}()
	return &rpc.Empty{}, nil
}

func (s *server) hostConn() (*grpc.ClientConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.host == nil {
		return nil, errors.New("sdk: host service not initialised")
	}
	return s.host, nil
}

func (s *server) Open(ctx context.Context, req *rpc.OpenRequest, send func(*rpc.OpenEvent) error) error {
	host, err := s.hostConn()
	if err != nil {
		return err
	}
	if req.Hop.Options == nil {
		req.Hop.Options = map[string]string{}
	}
	or := &OpenRequest{
		Name:     req.Name,
		Hop:      Hop(req.Hop),
		Argv:     req.Argv,
		Parent:   &remoteParent{s: s, host: host, openID: req.OpenID, parentID: req.ParentID, local: req.Local},
		Prompter: &remotePrompter{host: host, openID: req.OpenID},
		Log:      s.log.Named(req.Name),
		Timeout:  time.Duration(req.TimeoutMS) * time.Millisecond,
		Phase: func(name string) {
			_ = rpc.Invoke(context.Background(), host, rpc.MethodPhase, &rpc.PhaseRequest{OpenID: req.OpenID, Name: name}, &rpc.Empty{})
		},
	}
	st, err := s.t.Open(ctx, or)
	if err != nil {
		return err
	}
	if st == nil || (st.Process == nil) == (st.Conn == nil) {
		return errors.New("sdk: Open must return a Stream with exactly one of Process or Conn")
	}
	s.mu.Lock()
	s.streams[req.OpenID] = st
	s.mu.Unlock()
	ev := &rpc.OpenEvent{}
	if st.Process != nil {
		ev.ProcessID = st.Process.ID
	} else {
		if ev.ConnToken, ev.StderrToken, err = s.passConn(st); err != nil {
			return err
		}
	}
	if err := send(ev); err != nil {
		return err
	}
	if st.Setup != nil {
		if err := st.Setup(ctx); err != nil && ctx.Err() == nil {
			_ = send(&rpc.OpenEvent{Err: rpc.EncodeError(err)})
		}
	}
	<-ctx.Done()
	return nil
}

// passConn relays st.Conn (and st.Stderr) into socket pairs whose other
// ends go to the host as real descriptors.
func (s *server) passConn(st *Stream) (connTok, errTok uint64, err error) {
	if s.fds == nil {
		return 0, 0, errors.New("sdk: no fd socket from the host")
	}
	mine, theirs, err := socketPair()
	if err != nil {
		return 0, 0, err
	}
	connTok = s.fds.NewToken(true)
	err = s.fds.Send(connTok, theirs)
	theirs.Close()
	if err != nil {
		mine.Close()
		return 0, 0, err
	}
	go relay(mine, st.Conn)
	if st.Stderr != nil {
		r, w, err := os.Pipe()
		if err == nil {
			errTok = s.fds.NewToken(true)
			if s.fds.Send(errTok, r) != nil {
				errTok = 0
			}
			r.Close()
			go func() { _, _ = io.Copy(w, st.Stderr); w.Close() }()
		}
	}
	return connTok, errTok, nil
}

func socketPair() (*os.File, *os.File, error) {
	fds, err := rpc.Socketpair(syscall.SOCK_STREAM)
	if err != nil {
		return nil, nil, fmt.Errorf("socket pair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "relay"), os.NewFile(uintptr(fds[1]), "relay-host"), nil
}

// relay copies between the host's socket and the transport's stream, with
// half-closes passed through both ways. The socket is read with blocking
// reads (see rpc.BlockingReader): each byte the host sends reaches the
// transport without a poller wake-up.
func relay(sock *os.File, conn io.ReadWriteCloser) {
	shutdown := func(how int) {
		if rc, err := sock.SyscallConn(); err == nil {
			_ = rc.Control(func(fd uintptr) { _ = syscall.Shutdown(int(fd), how) })
		}
	}
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(sock, conn)
		shutdown(syscall.SHUT_WR)
		close(done)
	}()
	_, _ = io.Copy(conn, rpc.BlockingReader(sock))
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	} else {
		_ = conn.Close()
	}
	<-done
	_ = conn.Close()
	shutdown(syscall.SHUT_RDWR)
	_ = sock.Close()
}

func (s *server) Classify(_ context.Context, req *rpc.ClassifyRequest) (*rpc.ClassifyResponse, error) {
	c, ok := s.t.(Classifier)
	if !ok {
		return &rpc.ClassifyResponse{}, nil
	}
	return &rpc.ClassifyResponse{Err: rpc.EncodeError(c.Classify(BootFailure(req.Failure)))}, nil
}

func (s *server) Release(_ context.Context, req *rpc.ReleaseRequest) (*rpc.Empty, error) {
	s.mu.Lock()
	st := s.streams[req.OpenID]
	delete(s.streams, req.OpenID)
	s.mu.Unlock()
	if st != nil {
		if st.Conn != nil {
			_ = st.Conn.Close()
		}
		if st.Process != nil && st.Process.TTY != nil {
			_ = st.Process.TTY.Close()
		}
		if st.Close != nil {
			_ = st.Close()
		}
	}
	return &rpc.Empty{}, nil
}

type remoteParent struct {
	s        *server
	host     *grpc.ClientConn
	openID   uint64
	parentID uint64
	local    bool
}

func (p *remoteParent) Local() bool { return p.local }

func (p *remoteParent) Spawn(ctx context.Context, req SpawnRequest) (*Process, error) {
	var resp rpc.SpawnResponse
	if err := rpc.Invoke(ctx, p.host, rpc.MethodSpawn, &rpc.SpawnRequest{OpenID: p.openID, ParentID: p.parentID, Req: rpc.Spawn(req)}, &resp); err != nil {
		return nil, FromWire(err)
	}
	proc := &Process{ID: resp.ProcessID}
	if resp.TTY {
		tctx, cancel := context.WithCancel(context.Background())
		st, err := rpc.TTYStream(tctx, p.host)
		if err != nil {
			cancel()
			return nil, err
		}
		if err := st.SendMsg(&rpc.TTYChunk{ProcessID: resp.ProcessID}); err != nil {
			cancel()
			return nil, rpc.FromStatus(err)
		}
		proc.TTY = &ttyConn{st: st, cancel: cancel}
	}
	return proc, nil
}

func (p *remoteParent) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	if p.s.fds == nil {
		return nil, errors.New("sdk: no fd socket from the host")
	}
	var resp rpc.DialResponse
	if err := rpc.Invoke(ctx, p.host, rpc.MethodDial, &rpc.DialRequest{OpenID: p.openID, ParentID: p.parentID, Network: network, Address: address}, &resp); err != nil {
		return nil, FromWire(err)
	}
	f, err := p.s.fds.Receive(ctx, resp.Token)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return net.FileConn(f)
}

type ttyConn struct {
	st     grpc.ClientStream
	cancel context.CancelFunc
	mu     sync.Mutex
	buf    []byte
}

func (t *ttyConn) Read(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.buf) == 0 {
		c := new(rpc.TTYChunk)
		if err := t.st.RecvMsg(c); err != nil {
			if errors.Is(err, io.EOF) {
				return 0, io.EOF
			}
			return 0, io.EOF
		}
		t.buf = c.Data
	}
	n := copy(b, t.buf)
	t.buf = t.buf[n:]
	return n, nil
}

func (t *ttyConn) Write(b []byte) (int, error) {
	if err := t.st.SendMsg(&rpc.TTYChunk{Data: append([]byte(nil), b...)}); err != nil {
		return 0, rpc.FromStatus(err)
	}
	return len(b), nil
}

func (t *ttyConn) Close() error {
	t.cancel()
	return nil
}

type remotePrompter struct {
	host   *grpc.ClientConn
	openID uint64
}

func (p *remotePrompter) Prompt(ctx context.Context, pr Prompt) (string, error) {
	var resp rpc.PromptResponse
	if err := rpc.Invoke(ctx, p.host, rpc.MethodPrompt, &rpc.PromptRequest{OpenID: p.openID, Prompt: rpc.Prompt(pr)}, &resp); err != nil {
		return "", FromWire(err)
	}
	return resp.Answer, nil
}
