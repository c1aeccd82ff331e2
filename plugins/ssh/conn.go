package ssh

import (
	"errors"
	"io"
	"strings"
	"sync"

	xssh "golang.org/x/crypto/ssh"
)

// Conn is the byte stream of the command started by Open: reads come from
// its stdout, writes go to its stdin. It is the sdk.Stream's Conn.
type Conn struct {
	sess   *xssh.Session
	stdin  io.WriteCloser
	stdout io.Reader
	stderr io.Reader
	close  func() // closes the ssh clients (target, then jump hosts)

	closeOnce sync.Once
	done      chan struct{} // closed when the command has exited
	status    int
	waitErr   error
}

// startCommand runs argv, shell-quoted, in a new session of client.
func startCommand(client *xssh.Client, argv []string, closeClients func()) (*Conn, error) {
	sess, err := client.NewSession()
	if err != nil {
		return nil, err
	}
	c := &Conn{sess: sess, close: closeClients, done: make(chan struct{}), status: -1}
	if c.stdin, err = sess.StdinPipe(); err == nil {
		if c.stdout, err = sess.StdoutPipe(); err == nil {
			c.stderr, err = sess.StderrPipe()
		}
	}
	if err == nil {
		// exec: the login shell becomes the interpreter, so sshd is the
		// core's parent and no shell lingers for the life of the hop.
		err = sess.Start("exec " + shellQuote(argv))
	}
	if err != nil {
		sess.Close()
		return nil, err
	}
	go c.wait()
	return c, nil
}

func (c *Conn) wait() {
	err := c.sess.Wait()
	var ee *xssh.ExitError
	switch {
	case err == nil:
		c.status = 0
	case errors.As(err, &ee):
		c.status = ee.ExitStatus()
		if ee.Signal() != "" {
			c.status = 128 + signalNumber(ee.Signal())
		}
		c.waitErr = nil
	default:
		c.waitErr = err
	}
	close(c.done)
}

// Read reads the command's stdout; io.EOF when it is closed.
func (c *Conn) Read(p []byte) (int, error) { return c.stdout.Read(p) }

// Write writes to the command's stdin.
func (c *Conn) Write(p []byte) (int, error) { return c.stdin.Write(p) }

// CloseWrite closes the command's stdin: it reads end of file.
func (c *Conn) CloseWrite() error { return c.stdin.Close() }

// Close ends the session and closes the ssh connections of the hop,
// including those to its jump hosts.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		_ = c.sess.Close()
		c.close()
	})
	return nil
}

// Stderr returns the command's stderr.
func (c *Conn) Stderr() io.Reader { return c.stderr }

// Wait waits for the command to exit and returns its exit status (128+N for
// death by signal N). The error is set when the status is unknown: the
// connection was lost, or the server sent none.
func (c *Conn) Wait() (int, error) {
	<-c.done
	return c.status, c.waitErr
}

// Exited returns a channel closed when the command has exited.
func (c *Conn) Exited() <-chan struct{} { return c.done }

func signalNumber(name string) int {
	switch name {
	case "HUP":
		return 1
	case "INT":
		return 2
	case "QUIT":
		return 3
	case "ILL":
		return 4
	case "ABRT":
		return 6
	case "FPE":
		return 8
	case "KILL":
		return 9
	case "USR1":
		return 10
	case "SEGV":
		return 11
	case "USR2":
		return 12
	case "PIPE":
		return 13
	case "ALRM":
		return 14
	case "TERM":
		return 15
	}
	return 0
}

// shellQuote joins argv into one POSIX shell command line: each element is
// left alone when it holds only safe characters, else single-quoted.
func shellQuote(argv []string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		if a != "" && strings.IndexFunc(a, unsafeRune) < 0 {
			b.WriteString(a)
			continue
		}
		b.WriteByte('\'')
		b.WriteString(strings.ReplaceAll(a, "'", `'\''`))
		b.WriteByte('\'')
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return false
	}
	return !strings.ContainsRune("@%+=:,./-_", r)
}
