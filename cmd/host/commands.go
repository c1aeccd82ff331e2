package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sporehq/spore/core"
	"github.com/sporehq/spore/core/remote"
	"github.com/sporehq/spore/sdk"
)

func (g *globals) stdin() io.Reader {
	if g.noStdin {
		return nil
	}
	return os.Stdin
}

// session connects to target under a context cancelled by SIGINT,
// SIGTERM or SIGHUP; done closes everything.
func (g *globals) session(target string) (context.Context, *core.Context, func(), error) {
	ctx, stop := signalContext()
	h := g.host()
	done := func() { h.Close(); stop() }
	cx, err := h.Connect(ctx, target)
	if err != nil {
		done()
		return nil, nil, nil, err
	}
	return ctx, cx, done, nil
}

// progress returns a progress callback that draws a bar on stderr when it
// is a terminal (nil otherwise), and a func that finishes the bar.
func progress(what string) (func(done, total int64), func()) {
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		return nil, func() {}
	}
	var bar *progressbar.ProgressBar
	update := func(done, total int64) {
		if bar == nil {
			bar = progressbar.DefaultBytes(total, what)
		}
		_ = bar.Set64(done)
	}
	return update, func() {
		if bar != nil {
			_ = bar.Finish()
		}
	}
}

func runCmd(g *globals) *cobra.Command {
	var shell, dir string
	var env []string
	var pty bool
	c := &cobra.Command{
		Use:   "run TARGET [--shell 'CMD'] [-- CMD [ARG...]]",
		Short: "Run a command on TARGET; spore exits with its status",
		Example: `  spore run local:// -- uname -a
  spore run 'ssh://deploy@web1,sudo://root' -- systemctl status nginx
  spore run docker://app --shell 'echo $HOSTNAME > /tmp/x'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			argv := args[1:]
			if shell == "" && len(argv) == 0 {
				return fmt.Errorf("run: give a command after -- or --shell 'CMD'")
			}
			if shell != "" && len(argv) > 0 {
				return fmt.Errorf("run: give either --shell or a command, not both")
			}
			envMap := map[string]string{}
			for _, kv := range env {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("run: --env wants KEY=VALUE, got %q", kv)
				}
				envMap[k] = v
			}
			ctx, cx, done, err := g.session(args[0])
			if err != nil {
				return err
			}
			defer done()
			rc := &core.Cmd{Argv: argv, Shell: shell, Env: envMap, Dir: dir, Stdin: g.stdin(), Stdout: os.Stdout, Stderr: os.Stderr}
			if pty {
				return interactive(ctx, g, cx, rc)
			}
			st, err := cx.Run(ctx, rc)
			if err != nil {
				if ctx.Err() != nil {
					return exitError{130}
				}
				if sdk.KindOf(err) == sdk.KindNotFound {
					fmt.Fprintf(os.Stderr, "spore: %v\n", err)
					return exitError{127}
				}
				return err
			}
			if st != 0 {
				return exitError{st}
			}
			return nil
		},
	}
	c.Flags().StringVar(&shell, "shell", "", "run this string with /bin/sh -c on the target")
	c.Flags().StringArrayVarP(&env, "env", "e", nil, "set KEY=VALUE in the command's environment (repeatable)")
	c.Flags().StringVarP(&dir, "dir", "C", "", "working directory on the target")
	c.Flags().BoolVarP(&pty, "tty", "t", false, "run on a pseudo-terminal")
	return c
}

func shellCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "shell TARGET",
		Short: "Open an interactive login shell on TARGET",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cx, done, err := g.session(args[0])
			if err != nil {
				return err
			}
			defer done()
			return interactive(ctx, g, cx, &core.Cmd{Shell: `exec "${SHELL:-/bin/sh}" -l`, Stdin: g.stdin(), Stdout: os.Stdout})
		},
	}
}

// interactive runs rc on a remote pty with the local terminal in raw mode.
func interactive(ctx context.Context, g *globals, cx *core.Context, rc *core.Cmd) error {
	rc.PTY = true
	rc.Stderr = nil
	in := int(os.Stdin.Fd())
	if term.IsTerminal(in) {
		if w, hgt, err := term.GetSize(in); err == nil {
			rc.Cols, rc.Rows = w, hgt
		}
		old, err := term.MakeRaw(in)
		if err == nil {
			defer term.Restore(in, old)
		}
		// In raw mode Ctrl-C reaches the remote terminal, not spore.
		signal.Ignore(os.Interrupt)
	}
	if rc.Cols == 0 {
		rc.Rows, rc.Cols = 24, 80
	}
	p, err := cx.Start(context.Background(), rc)
	if err != nil {
		return err
	}
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)
	go func() {
		for range winch {
			if w, hgt, err := term.GetSize(in); err == nil {
				_ = p.Resize(context.Background(), hgt, w)
			}
		}
	}()
	st, err := p.Wait(ctx)
	if err != nil {
		return err
	}
	if st != 0 {
		return exitError{st}
	}
	return nil
}

func putCmd(g *globals) *cobra.Command {
	var mode string
	c := &cobra.Command{
		Use:   "put TARGET LOCAL REMOTE",
		Short: "Copy a local file to TARGET atomically (temp file, fsync, rename; size and sha256 checked)",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			var m os.FileMode
			if mode != "" {
				var v uint32
				if _, err := fmt.Sscanf(mode, "%o", &v); err != nil {
					return fmt.Errorf("put: --mode wants octal, got %q", mode)
				}
				m = os.FileMode(v)
			}
			ctx, cx, done, err := g.session(args[0])
			if err != nil {
				return err
			}
			defer done()
			remotePath := args[2]
			if fi, err := cx.Stat(ctx, remotePath); err == nil && fi.Type == "dir" {
				remotePath = strings.TrimRight(remotePath, "/") + "/" + filepath.Base(args[1])
			}
			update, finish := progress("put " + filepath.Base(args[1]))
			err = cx.PutFile(ctx, args[1], remotePath, m, update)
			finish()
			return err
		},
	}
	c.Flags().StringVar(&mode, "mode", "", "file mode on the target, octal (default: the local file's)")
	return c
}

func getCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get TARGET REMOTE LOCAL",
		Short: "Copy a file from TARGET (written to a temp file and renamed once its sha256 checks out)",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			local := args[2]
			if st, err := os.Stat(local); err == nil && st.IsDir() {
				local = filepath.Join(local, filepath.Base(args[1]))
			}
			ctx, cx, done, err := g.session(args[0])
			if err != nil {
				return err
			}
			defer done()
			tmp, err := os.CreateTemp(filepath.Dir(local), "."+filepath.Base(local)+".spore-*")
			if err != nil {
				return err
			}
			defer os.Remove(tmp.Name())
			update, finish := progress("get " + filepath.Base(args[1]))
			fi, err := cx.Get(ctx, args[1], tmp, update)
			finish()
			if err == nil {
				err = tmp.Chmod(os.FileMode(fi.Mode).Perm())
			}
			if err == nil {
				err = tmp.Sync()
			}
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			return os.Rename(tmp.Name(), local)
		},
	}
}

func pyCmd(g *globals) *cobra.Command {
	var code, argsJSON string
	c := &cobra.Command{
		Use:   "py TARGET -c CODE",
		Short: "Run Python on TARGET and print its result as JSON",
		Long: `Run Python on TARGET. An expression's value is printed as JSON; for
statements, the value of the variable "result". The JSON given with --args is
visible to the code as "args". What the code prints goes to stdout first.`,
		Example: `  spore py local:// -c 'import os; result = os.uname()[1]'
  spore py ssh://web1 -c 'sum(args)' --args '[1,2,3]'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if code == "" {
				return fmt.Errorf("py: give the code with -c")
			}
			var a any
			if argsJSON != "" {
				if err := json.Unmarshal([]byte(argsJSON), &a); err != nil {
					return fmt.Errorf("py: --args is not JSON: %v", err)
				}
			}
			ctx, cx, done, err := g.session(args[0])
			if err != nil {
				return err
			}
			defer done()
			r, err := cx.Python(ctx, code, a)
			if err != nil {
				var se *sdk.Error
				if errors.As(err, &se) && se.Kind == sdk.KindRemote {
					if tb := se.Detail["traceback"]; tb != "" {
						fmt.Fprint(os.Stderr, tb)
					}
					fmt.Fprintf(os.Stderr, "spore: remote exception: %s\n", se.Msg)
					return exitError{1}
				}
				return err
			}
			fmt.Print(r.Stdout)
			fmt.Println(string(r.Result))
			return nil
		},
	}
	c.Flags().StringVarP(&code, "code", "c", "", "Python source to run")
	c.Flags().StringVar(&argsJSON, "args", "", "JSON value visible to the code as args")
	return c
}

func pingCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "ping TARGET...",
		Short: "Connect, and show each hop's facts and setup timing",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signalContext()
			defer stop()
			h := g.host()
			defer h.Close()
			var failed error
			var report []map[string]any
			for _, target := range args {
				t0 := time.Now()
				cx, err := h.Connect(ctx, target)
				if err != nil {
					printError(err)
					failed = exitError{exitFailure}
					continue
				}
				total := time.Since(t0)
				var chain []*core.Context
				for c := cx; c != nil; c = c.Parent() {
					chain = append([]*core.Context{c}, chain...)
				}
				for _, c := range chain {
					rtt, err := c.Ping(ctx)
					if err != nil {
						return err
					}
					f := c.Facts()
					if asJSON {
						report = append(report, map[string]any{"target": target, "hop": c.Hop().Spec, "facts": f,
							"phases": c.Phases(), "ping_ns": rtt.Nanoseconds()})
						continue
					}
					fmt.Printf("%s\n  %s %s (%s) %s, %s %s on %s\n  pid %d, uid %d (%s), cwd %s\n",
						c.Hop().Spec, f.Implementation, f.Python, f.Executable, f.Platform, f.System, f.Release, f.Hostname,
						f.PID, f.UID, f.User, f.Cwd)
					var parts []string
					var sum time.Duration
					for _, p := range c.Phases() {
						parts = append(parts, fmt.Sprintf("%s %s", p.Name, round(p.Duration)))
						sum += p.Duration
					}
					fmt.Printf("  setup %s: %s\n  ping %s\n", round(sum), strings.Join(parts, ", "), round(rtt))
				}
				if !asJSON {
					fmt.Printf("  connected in %s\n", round(total))
				}
			}
			if asJSON {
				b, _ := json.MarshalIndent(report, "", "  ")
				fmt.Println(string(b))
			}
			return failed
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func round(d time.Duration) time.Duration {
	switch {
	case d > time.Second:
		return d.Round(time.Millisecond)
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

func pluginsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "plugins",
		Short: "List the transports found: name, path, protocol version, options",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signalContext()
			defer stop()
			h := g.host()
			defer h.Close()
			files := core.DiscoverPlugins(core.PluginDirs())
			if len(files) == 0 {
				return fmt.Errorf("no transport plugins found in %s", strings.Join(core.PluginDirs(), ", "))
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tPATH\tPROTOCOL")
			for _, f := range files {
				info, _, err := h.PluginInfo(ctx, f.Name)
				if err != nil {
					fmt.Fprintf(tw, "%s\t%s\terror: %v\n", f.Name, f.Path, err)
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\n", f.Name, f.Path, info.Protocol)
				for _, o := range info.Options {
					fmt.Fprintf(tw, "\t  ?%s=\t%s\n", o.Name, o.Help)
				}
			}
			return tw.Flush()
		},
	}
}

func bootCommandCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "boot-command TARGET",
		Short: "Print the boot command the last hop of TARGET would run",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			hops, err := core.ParseTarget(args[0])
			if err != nil {
				return err
			}
			argv := core.BootArgvFor(hops)
			if asJSON {
				b, _ := json.Marshal(argv)
				fmt.Println(string(b))
				return nil
			}
			fmt.Println(core.ShellQuote(argv))
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the argv as a JSON array")
	return c
}

func sizesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "sizes",
		Short: "Print the boot command and preamble sizes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			argv := remote.BootArgv("python3", "local")
			fmt.Printf("Boot command size: %d bytes (shell-quoted, python3, context name \"local\")\n", len(core.ShellQuote(argv)))
			pre := len(remote.Preamble())
			fmt.Printf("Preamble size: %d (%.2fKiB)\n\n", pre, float64(pre)/1024)
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "module\tOriginal\t\tMinimized\t\t\tCompressed\t\t\t")
			for _, m := range remote.Modules() {
				fmt.Fprintf(tw, "%s\t%d\t%.1fKiB\t%d\t%.1fKiB\t%.1f%%\t%d\t%.1fKiB\t%.1f%%\t\n", m.Name,
					m.Original, kib(m.Original), m.Minified, kib(m.Minified), pct(m.Minified, m.Original),
					m.Compressed, kib(m.Compressed), pct(m.Compressed, m.Original))
			}
			return tw.Flush()
		},
	}
}

func kib(n int) float64    { return float64(n) / 1024 }
func pct(a, b int) float64 { return 100 * float64(a) / float64(b) }
