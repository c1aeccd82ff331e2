package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sporehq/spore/core"
	"github.com/sporehq/spore/sdk"
)

// exitFailure is spore's own failure status, as ssh uses.
const exitFailure = 255

// exitError carries an exit status through cobra.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

type globals struct {
	verbose int
	batch   bool
	noStdin bool
}

func main() {
	closeInheritedOnExec()
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	g := &globals{}
	root := &cobra.Command{
		Use:           "spore",
		Short:         "Run work on other machines through chains of ssh, sudo, docker and local hops",
		SilenceUsage:  true,
		SilenceErrors: true,
		Long: `spore runs commands, moves files, opens shells and runs Python on other
machines through chains of connections, with nothing installed on the target
but a Python interpreter.

TARGET is a chain of hops separated by commas, each SCHEME://[user@]host[:port][?opt=val&...]:
  local://                     this machine (or the previous hop's)
  ssh://deploy@web1:2222       an ssh server
  sudo://root                  another account, through sudo
  docker://app?user=www        a container, through docker exec
e.g. 'ssh://deploy@web1,sudo://root'. Options every hop has: python=PATH|auto,
timeout=DURATION, password_env=NAME, password_file=PATH.

spore exits with the remote command's status, or 255 when spore itself fails.`,
	}
	root.PersistentFlags().CountVarP(&g.verbose, "verbose", "v", "log more (plugin logs, remote stderr); repeat for more")
	root.PersistentFlags().BoolVar(&g.batch, "batch", false, "never prompt: fail at once when a secret is needed")
	root.PersistentFlags().BoolVarP(&g.noStdin, "no-stdin", "n", false, "do not read standard input")
	root.AddCommand(runCmd(g), shellCmd(g), putCmd(g), getCmd(g), pyCmd(g), pingCmd(g),
		pluginsCmd(g), bootCommandCmd(g), sizesCmd())
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	printError(err)
	return exitFailure
}

func printError(err error) {
	fmt.Fprintf(os.Stderr, "spore: %v\n", err)
}

// signalContext is cancelled on SIGINT/SIGTERM/SIGHUP.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
}

func (g *globals) host() *core.Host {
	level := hclog.Warn
	switch {
	case g.verbose >= 2:
		level = hclog.Trace
	case g.verbose == 1:
		level = hclog.Debug
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "spore", Level: level, Output: os.Stderr})
	opts := core.Options{Logger: log, Batch: g.batch}
	if !g.batch {
		opts.Ask = askTTY
	}
	if g.verbose > 0 {
		opts.LogLevel = "debug"
	}
	return core.NewHost(opts)
}

// askTTY asks on the controlling terminal, without echo for secrets.
func askTTY(ctx context.Context, p sdk.Prompt) (string, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", sdk.Errorf(sdk.KindPromptUnavailable, "a %s is needed and there is no terminal to ask on (use password_env= or password_file=)", p.Key)
	}
	defer tty.Close()
	msg := p.Message
	if msg == "" {
		msg = p.Key + ": "
	}
	if p.Retry {
		msg = "Sorry, try again.\n" + msg
	}
	fmt.Fprint(tty, msg)
	type answer struct {
		s   string
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		var b []byte
		var err error
		if p.Secret {
			b, err = term.ReadPassword(int(tty.Fd()))
			fmt.Fprintln(tty)
		} else {
			var line string
			_, err = fmt.Fscanln(tty, &line)
			b = []byte(line)
		}
		ch <- answer{strings.TrimRight(string(b), "\r\n"), err}
	}()
	select {
	case a := <-ch:
		return a.s, a.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}
