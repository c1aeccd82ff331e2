package core

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/sporehq/spore/sdk"
	"github.com/sporehq/spore/sdk/rpc"
)

// PluginPrefix starts the file name of every transport plugin binary.
const PluginPrefix = "spore-transport-"

// PluginPathEnv lists extra directories searched for plugins.
const PluginPathEnv = "SPORE_PLUGIN_PATH"

// PluginFile is a discovered plugin binary.
type PluginFile struct {
	Name string // the scheme it serves
	Path string
}

// PluginDirs returns the directories searched for plugins, in order: the
// directory of the running executable, then each of SPORE_PLUGIN_PATH.
func PluginDirs() []string {
	var dirs []string
	if exe, err := os.Executable(); err == nil {
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		dirs = append(dirs, filepath.Dir(exe))
	}
	for _, d := range filepath.SplitList(os.Getenv(PluginPathEnv)) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// DiscoverPlugins lists spore-transport-NAME executables in dirs; the first
// directory holding a name wins.
func DiscoverPlugins(dirs []string) []PluginFile {
	seen := map[string]bool{}
	var out []PluginFile
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			n := e.Name()
			if !strings.HasPrefix(n, PluginPrefix) || e.IsDir() {
				continue
			}
			name := strings.TrimPrefix(n, PluginPrefix)
			if name == "" || seen[name] || strings.ContainsAny(name, ".") {
				continue
			}
			p := filepath.Join(d, n)
			if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
				continue
			}
			seen[name] = true
			out = append(out, PluginFile{Name: name, Path: p})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// pluginClient is one running plugin process.
type pluginClient struct {
	file   PluginFile
	client *plugin.Client
	conn   *grpc.ClientConn
	info   sdk.Info
	fds    *rpc.FDPass
}

type hostPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

type grpcSide struct {
	conn   *grpc.ClientConn
	broker *plugin.GRPCBroker
}

func (hostPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return fmt.Errorf("the host serves no transport")
}

func (hostPlugin) GRPCClient(_ context.Context, b *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &grpcSide{conn: c, broker: b}, nil
}

// launchPlugin starts a plugin binary, checks its protocol and info, and
// serves the host service to it through the broker.
func launchPlugin(ctx context.Context, f PluginFile, env []string, log hclog.Logger, svc rpc.HostServer) (*pluginClient, error) {
	fds, theirs, err := rpc.NewFDPassPair()
	if err != nil {
		return nil, err
	}
	defer theirs.Close()
	cmd := exec.Command(f.Path)
	cmd.Env = append(append([]string(nil), env...), rpc.FDEnv+"=3")
	cmd.ExtraFiles = []*os.File{theirs}
	// If spore dies, its plugins die with it.
	cmd.SysProcAttr = pluginProcAttr()
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  plugin.HandshakeConfig(rpc.Handshake),
		Plugins:          plugin.PluginSet{rpc.PluginName: hostPlugin{}},
		Cmd:              cmd,
		SkipHostEnv:      true,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           pluginLogger{log.Named(f.Name)},
		Managed:          false,
		StartTimeout:     pluginStartTimeout,
	})
	fail := func(err error) (*pluginClient, error) {
		// The plugin leads its own process group: end all of it, or a
		// child holding its stdout would keep go-plugin waiting.
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		client.Kill()
		fds.Close()
		// go-plugin's handshake errors run to a dozen lines of advice: the
		// first says what happened.
		msg, _, _ := strings.Cut(err.Error(), "\n")
		return nil, &sdk.Error{Kind: sdk.KindNoPlugin, Msg: fmt.Sprintf("transport plugin %s (%s) is unusable: %s", f.Name, f.Path, msg), Err: err}
	}
	rc, err := client.Client()
	if err != nil {
		return fail(err)
	}
	raw, err := rc.Dispense(rpc.PluginName)
	if err != nil {
		return fail(err)
	}
	side := raw.(*grpcSide)
	var info rpc.InfoResponse
	if err := rpc.Invoke(ctx, side.conn, rpc.MethodInfo, &rpc.Empty{}, &info); err != nil {
		return fail(err)
	}
	if info.Protocol != sdk.ProtocolVersion {
		return fail(fmt.Errorf("speaks transport protocol %d, this spore speaks %d", info.Protocol, sdk.ProtocolVersion))
	}
	if info.Name != f.Name {
		return fail(fmt.Errorf("binary named for %q serves %q", f.Name, info.Name))
	}
	id := side.broker.NextId()
	go side.broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(opts...)
		rpc.RegisterHost(s, svc)
		return s
	})
	if err := rpc.Invoke(ctx, side.conn, rpc.MethodInit, &rpc.InitRequest{HostBroker: id}, &rpc.Empty{}); err != nil {
		return fail(err)
	}
	pc := &pluginClient{file: f, client: client, conn: side.conn, fds: fds}
	pc.info = sdk.Info{Name: info.Name, Protocol: info.Protocol, SameHost: info.SameHost}
	for _, o := range info.Options {
		pc.info.Options = append(pc.info.Options, sdk.Option{Name: o.Name, Help: o.Help, Default: o.Default, Secret: o.Secret})
	}
	return pc, nil
}

// pluginLogger is the logger go-plugin's client gets. A plugin that dies
// fails what it served, and that failure is reported (one line in the
// CLI); go-plugin's own ERROR line about the exit goes to debug instead.
type pluginLogger struct{ hclog.Logger }

func (l pluginLogger) Error(msg string, args ...interface{}) {
	if msg == "plugin process exited" {
		l.Logger.Debug(msg, args...)
		return
	}
	l.Logger.Error(msg, args...)
}

// Warn demotes go-plugin's warning about a plugin it had to kill: the
// failure that made it kill the plugin is reported already.
func (l pluginLogger) Warn(msg string, args ...interface{}) {
	if msg == "plugin failed to exit gracefully" {
		l.Logger.Debug(msg, args...)
		return
	}
	l.Logger.Warn(msg, args...)
}

// pluginStartTimeout bounds a plugin's start and handshake.
const pluginStartTimeout = 10 * time.Second

func (p *pluginClient) kill() {
	p.client.Kill()
	p.fds.Close()
}
