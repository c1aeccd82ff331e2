package sudo

import (
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sporehq/spore/sdk"
)

// fakeTTY is sudo's terminal as the plugin sees it: reads return what the
// test "prints", writes are recorded.
type fakeTTY struct {
	r      *io.PipeReader
	w      *io.PipeWriter
	mu     sync.Mutex
	typed  []string
	wrote  chan string
	closed chan struct{}
	once   sync.Once
}

func newFakeTTY() *fakeTTY {
	r, w := io.Pipe()
	return &fakeTTY{r: r, w: w, wrote: make(chan string, 10), closed: make(chan struct{})}
}

func (f *fakeTTY) Read(b []byte) (int, error) { return f.r.Read(b) }
func (f *fakeTTY) Write(b []byte) (int, error) {
	f.mu.Lock()
	f.typed = append(f.typed, string(b))
	f.mu.Unlock()
	f.wrote <- string(b)
	return len(b), nil
}
func (f *fakeTTY) Close() error {
	f.once.Do(func() { close(f.closed); f.r.Close() })
	return nil
}
func (f *fakeTTY) print(s string) { _, _ = f.w.Write([]byte(s)) }

type fakePrompter struct {
	mu      sync.Mutex
	asked   []sdk.Prompt
	answers []string
	err     error // returned on Retry
}

func (p *fakePrompter) Prompt(_ context.Context, pr sdk.Prompt) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked = append(p.asked, pr)
	if pr.Retry && p.err != nil {
		return "", p.err
	}
	if len(p.answers) == 0 {
		return "", sdk.Errorf(sdk.KindPromptUnavailable, "no answer")
	}
	a := p.answers[0]
	p.answers = p.answers[1:]
	return a, nil
}

func startDialogue(t *testing.T, p *fakePrompter) (*fakeTTY, string, context.CancelFunc, chan error) {
	t.Helper()
	tty := newFakeTTY()
	tok, err := newToken()
	if err != nil {
		t.Fatal(err)
	}
	d := &dialogue{tty: tty, prompter: p, token: tok, target: "root"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.run(ctx) }()
	t.Cleanup(cancel)
	return tty, tok, cancel, done
}

func typed(t *testing.T, tty *fakeTTY) string {
	t.Helper()
	select {
	case s := <-tty.wrote:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("nothing typed on the terminal")
		return ""
	}
}

// sudoPrompt is what sudo prints for promptFor(tok).
func sudoPrompt(tok string) string {
	return strings.NewReplacer("%p", "alice", "%h", "web1").Replace(promptFor(tok))
}

func TestSetupAnswersSplitPrompt(t *testing.T) {
	p := &fakePrompter{answers: []string{"s3cret"}}
	tty, tok, cancel, done := startDialogue(t, p)
	pr := sudoPrompt(tok)
	tty.print("Last login: yesterday\r\n" + pr[:7])
	tty.print(pr[7:])
	if got := typed(t, tty); got != "s3cret\n" {
		t.Fatalf("typed %q", got)
	}
	tty.print("****\r\n") // pwfeedback
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("run: %v", err)
	}
	if len(p.asked) != 1 || p.asked[0].Retry || !p.asked[0].Secret || p.asked[0].Key != "password" {
		t.Fatalf("asked %+v", p.asked)
	}
	if p.asked[0].Message != "[sudo] password for alice on web1: " {
		t.Fatalf("message %q", p.asked[0].Message)
	}
	select {
	case <-tty.closed:
	case <-time.After(time.Second):
		t.Fatal("terminal not closed after setup")
	}
}

func TestSetupRetryThenRefused(t *testing.T) {
	refused := sdk.Errorf(sdk.KindIncorrectPassword, "the password from password_env=PW was refused")
	p := &fakePrompter{answers: []string{"wrong"}, err: refused}
	tty, tok, _, done := startDialogue(t, p)
	tty.print(sudoPrompt(tok))
	typed(t, tty)
	go tty.print("\r\nSorry, try again.\r\n" + sudoPrompt(tok))
	var err error
	select {
	case err = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("setup did not fail")
	}
	if sdk.KindOf(err) != sdk.KindIncorrectPassword || !strings.Contains(err.Error(), "incorrect password") {
		t.Fatalf("err %v", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Fatal("password in the error")
	}
	if len(p.asked) != 2 || !p.asked[1].Retry {
		t.Fatalf("asked %+v", p.asked)
	}
}

func TestSetupForeignPrompt(t *testing.T) {
	p := &fakePrompter{answers: []string{"pw"}}
	tty, _, _, _ := startDialogue(t, p)
	tty.print("[sudo] Passwort für alice: ")
	if got := typed(t, tty); got != "pw\n" {
		t.Fatalf("typed %q", got)
	}
	if p.asked[0].Message != "[sudo] password to become root: " {
		t.Fatalf("message %q", p.asked[0].Message)
	}
}

func TestSetupPromptUnavailable(t *testing.T) {
	p := &fakePrompter{}
	tty, tok, _, done := startDialogue(t, p)
	tty.print(sudoPrompt(tok))
	if err := <-done; sdk.KindOf(err) != sdk.KindPromptUnavailable {
		t.Fatalf("err %v", err)
	}
}

func TestSetupTTYClosed(t *testing.T) {
	tty, _, _, done := startDialogue(t, &fakePrompter{})
	tty.w.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("setup hangs after the terminal closed")
	}
}

func TestSetupEscapesInUserName(t *testing.T) {
	p := &fakePrompter{answers: []string{"pw"}}
	tty, tok, _, _ := startDialogue(t, p)
	tty.print(promptStart(tok) + "ev\x1b]0;x\x07il@h" + promptEnd(tok))
	typed(t, tty)
	if strings.ContainsAny(p.asked[0].Message, "\x1b\x07") {
		t.Fatalf("control characters reach the person: %q", p.asked[0].Message)
	}
}

func TestClassify(t *testing.T) {
	tr := New()
	cases := []struct {
		name string
		f    sdk.BootFailure
		kind sdk.Kind
	}{
		{"wrong", sdk.BootFailure{Stderr: []byte("sudo: 3 incorrect password attempts\n"), Exited: true, ExitStatus: 1}, sdk.KindIncorrectPassword},
		{"sorry-exit", sdk.BootFailure{TTY: []byte("Sorry, try again.\r\n"), Exited: true, ExitStatus: 1}, sdk.KindIncorrectPassword},
		{"sorry-killed", sdk.BootFailure{TTY: []byte("Sorry, try again.\r\n"), Exited: true, ExitStatus: 137}, ""},
		{"sudoers", sdk.BootFailure{Stderr: []byte("bob is not in the sudoers file.  This incident will be reported.\n")}, sdk.KindNotAllowed},
		{"sudoers-new", sdk.BootFailure{Stderr: []byte("sudo: user bob is not in the sudoers file\n")}, sdk.KindNotAllowed},
		{"execute", sdk.BootFailure{Stderr: []byte("Sorry, user bob is not allowed to execute '/usr/bin/python3 -c x' as app on web1.\n")}, sdk.KindNotAllowed},
		{"maynot", sdk.BootFailure{Stderr: []byte("Sorry, user bob may not run sudo on web1.\n")}, sdk.KindNotAllowed},
		{"requiretty", sdk.BootFailure{Stderr: []byte("sudo: sorry, you must have a tty to run sudo\n")}, sdk.KindNotAllowed},
		{"unknown", sdk.BootFailure{Stderr: []byte("sudo: unknown user nosuch\nsudo: error initializing audit plugin sudoers_audit\n")}, sdk.KindBadTarget},
		{"nosudo-dash", sdk.BootFailure{Stderr: []byte("sh: 1: sudo: not found\n"), Exited: true, ExitStatus: 127, Python: "python3"}, sdk.KindUnavailable},
		{"nosudo-bash", sdk.BootFailure{Stderr: []byte("bash: sudo: command not found\n"), Exited: true, ExitStatus: 127, Python: "python3"}, sdk.KindUnavailable},
		{"nopython", sdk.BootFailure{Stderr: []byte("sudo: python3: command not found\n"), Exited: true, ExitStatus: 1, Python: "python3"}, ""},
		{"nopython-login", sdk.BootFailure{Stderr: []byte("-sh: 1: /x/python3: not found\n"), Exited: true, ExitStatus: 127, Python: "/x/python3"}, ""},
		{"noexec", sdk.BootFailure{Stderr: []byte("sudo: unable to execute /root/py: Permission denied\n"), Exited: true, ExitStatus: 1, Python: "/root/py"}, sdk.KindNoPython},
		{"nothing", sdk.BootFailure{Output: []byte("hello\n")}, ""},
	}
	for _, c := range cases {
		err := tr.Classify(c.f)
		got := sdk.Kind("")
		if err != nil {
			got = sdk.KindOf(err)
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("%s: error is not one line: %q", c.name, err)
			}
		}
		if got != c.kind {
			t.Errorf("%s: kind %q, want %q (%v)", c.name, got, c.kind, err)
		}
	}
}

func TestHopAndArgv(t *testing.T) {
	c, err := parseHop(sdk.Hop{Scheme: "sudo", Options: map[string]string{"login": "", "set_home": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	got := c.argv("P", []string{"python3", "-c", "x"})
	want := []string{"sudo", "-p", "P", "-u", "root", "-H", "-i", "--", "python3", "-c", "x"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("argv %q", got)
	}
	for _, h := range []sdk.Hop{
		{Host: "-x"}, {Host: "a b"}, {User: "bob", Host: "root"}, {Host: "root", Port: 22},
		{Host: "root", Options: map[string]string{"login": "maybe"}},
	} {
		if _, err := parseHop(h); sdk.KindOf(err) != sdk.KindBadTarget {
			t.Errorf("%+v: %v", h, err)
		}
	}
	if p := promptFor("ab"); strings.Count(p, "%") != 2 || !strings.Contains(p, "%p@%h") {
		t.Fatalf("prompt %q", p)
	}
}
