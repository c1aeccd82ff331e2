package sudo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode"

	"github.com/hashicorp/go-hclog"

	"github.com/sporehq/spore/sdk"
)

// dialogue answers sudo's password prompts on the terminal of one spawned
// sudo, until the host reports the context up.
type dialogue struct {
	tty      io.ReadWriteCloser
	prompter sdk.Prompter
	token    string
	target   string
	log      hclog.Logger
	phase    func(string)

	buf   []byte // terminal text not yet looked at in full
	asked int    // prompts answered so far
}

// maxBuf bounds the terminal text kept while no prompt is complete.
const maxBuf = 8 << 10

// run is the Stream's Setup.
func (d *dialogue) run(ctx context.Context) error {
	defer d.tty.Close()
	chunks := make(chan []byte)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(chunks)
		b := make([]byte, 4096)
		for {
			n, err := d.tty.Read(b)
			if n > 0 {
				select {
				case chunks <- append([]byte(nil), b[:n]...):
				case <-stop:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case c, ok := <-chunks:
			if !ok {
				// The terminal closed: sudo has gone. The host sees the
				// process end and asks Classify why.
				return nil
			}
			d.buf = append(d.buf, c...)
			if err := d.step(ctx); err != nil {
				return err
			}
		}
	}
}

// step looks at the terminal text gathered so far and answers every
// complete prompt in it.
func (d *dialogue) step(ctx context.Context) error {
	start, end := promptStart(d.token), promptEnd(d.token)
	for {
		text := string(d.buf)
		if i := strings.Index(text, start); i >= 0 {
			if e := recognize(text[:i]); e != nil {
				return e
			}
			rest := text[i+len(start):]
			j := strings.Index(rest, end)
			if j < 0 {
				if len(rest) > 1024 {
					// Not our prompt after all; drop it.
					d.buf = []byte(rest)
					continue
				}
				return nil // the rest of the prompt is still coming
			}
			d.buf = []byte(rest[j+len(end):])
			if err := d.answer(ctx, rest[:j]); err != nil {
				return err
			}
			continue
		}
		if e := recognize(text); e != nil {
			return e
		}
		if foreignPrompt(text) {
			d.buf = nil
			if err := d.answer(ctx, ""); err != nil {
				return err
			}
			continue
		}
		if len(d.buf) > maxBuf {
			d.buf = append([]byte(nil), d.buf[len(d.buf)-1024:]...)
		}
		return nil
	}
}

// answer asks the host for the password and types it on the terminal. who
// is sudo's expansion of %p@%h, or "" for a prompt that is not ours.
func (d *dialogue) answer(ctx context.Context, who string) error {
	retry := d.asked > 0
	d.asked++
	if d.asked == 1 && d.phase != nil {
		d.phase("auth")
	}
	user, host, _ := strings.Cut(printable(who), "@")
	msg := fmt.Sprintf("[sudo] password to become %s: ", d.target)
	if user != "" && host != "" {
		msg = fmt.Sprintf("[sudo] password for %s on %s: ", user, host)
	}
	if d.log != nil {
		d.log.Debug("sudo asks for a password", "for", user, "retry", retry)
	}
	ans, err := d.prompter.Prompt(ctx, sdk.Prompt{Key: "password", Message: msg, Secret: true, Retry: retry})
	if err != nil {
		var se *sdk.Error
		if retry && errors.As(err, &se) && se.Kind == sdk.KindIncorrectPassword {
			whose := ""
			if user != "" {
				whose = " for " + user
			}
			return &sdk.Error{Kind: sdk.KindIncorrectPassword, Msg: fmt.Sprintf("incorrect password%s (sudo asked again): %s", whose, se.Msg), Err: err}
		}
		return err
	}
	b := make([]byte, len(ans)+1)
	copy(b, ans)
	b[len(ans)] = '\n'
	_, err = d.tty.Write(b)
	for i := range b {
		b[i] = 0
	}
	if err != nil {
		return &sdk.Error{Kind: sdk.KindUnknown, Msg: "could not type the password on sudo's terminal", Err: err}
	}
	return nil
}

// foreignLine matches a password prompt that is not ours (PAM's own, when
// sudoers lets it replace -p), in English and a few common translations.
var foreignLine = regexp.MustCompile(`(?i)(password|passwort|passord|mot de passe|contraseña|senha|wachtwoord|hasło|heslo|salasana|lösenord|пароль|密码|密碼|パスワード|암호)[^\n]{0,80}[:：]\s*$`)

// foreignPrompt reports whether text ends in an unanswered password prompt
// that is not ours: the last line, without a newline after it.
func foreignPrompt(text string) bool {
	if strings.HasSuffix(text, "\n") || strings.Contains(text, "[spore-sudo ") {
		return false
	}
	if i := strings.LastIndexAny(text, "\r\n"); i >= 0 {
		text = text[i+1:]
	}
	return foreignLine.MatchString(text)
}

// printable keeps what a terminal shows harmlessly: no control characters
// or escape sequences from the target, at most 100 characters.
func printable(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n >= 100 {
			break
		}
		if unicode.IsPrint(r) {
			b.WriteRune(r)
			n++
		}
	}
	return strings.TrimSpace(b.String())
}
