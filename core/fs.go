package core

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/sporehq/spore/sdk"
)

// PythonResult is what remote Python code returned.
type PythonResult struct {
	// Result is the value of the expression, or of the variable `result`
	// after statements, as JSON (a repr string when not JSON-able).
	Result json.RawMessage `json:"result"`
	// Stdout is what the code printed.
	Stdout string `json:"stdout"`
}

// Python runs code in the core. An expression's value is returned; for
// statements, the value of the variable `result`. args is visible to the
// code as `args`. A remote exception is an *sdk.Error of KindRemote whose
// Detail["traceback"] holds the remote traceback.
func (c *Context) Python(ctx context.Context, code string, args any) (*PythonResult, error) {
	var r PythonResult
	var raw json.RawMessage
	if err := c.conn.call(ctx, map[string]any{"op": "python", "code": code, "args": args}, &raw); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, protocolError("python reply: %v", err)
	}
	return &r, nil
}

// FileInfo describes a remote file.
type FileInfo struct {
	Size  int64   `json:"size"`
	Mode  uint32  `json:"mode"`
	Type  string  `json:"type"` // file, dir, symlink, other
	MTime float64 `json:"mtime"`
	UID   int     `json:"uid"`
	GID   int     `json:"gid"`
}

// Stat returns information about a remote path (not following symlinks).
func (c *Context) Stat(ctx context.Context, path string) (*FileInfo, error) {
	var fi FileInfo
	if err := c.conn.call(ctx, map[string]any{"op": "stat", "path": path}, &fi); err != nil {
		return nil, err
	}
	return &fi, nil
}

// List returns the names in a remote directory, sorted.
func (c *Context) List(ctx context.Context, path string) ([]string, error) {
	var r struct {
		Names []string `json:"names"`
	}
	err := c.conn.call(ctx, map[string]any{"op": "list", "path": path}, &r)
	return r.Names, err
}

// Mkdir creates a remote directory (and its parents, with parents).
func (c *Context) Mkdir(ctx context.Context, path string, mode os.FileMode, parents bool) error {
	return c.conn.call(ctx, map[string]any{"op": "mkdir", "path": path, "mode": uint32(mode.Perm()), "parents": parents}, nil)
}

// Remove removes a remote file or empty directory (any directory, with
// recursive).
func (c *Context) Remove(ctx context.Context, path string, recursive bool) error {
	return c.conn.call(ctx, map[string]any{"op": "remove", "path": path, "recursive": recursive}, nil)
}

// Put writes size bytes from r to path on the target, atomically: the core
// writes a temporary file beside path, checks size (and sha256 when given,
// hex), fsyncs and renames it into place. Nothing is left behind on failure.
// progress, if set, is called with the running byte count.
func (c *Context) Put(ctx context.Context, r io.Reader, size int64, path string, mode os.FileMode, sum string, progress func(int64)) error {
	ch, err := c.conn.newChannel()
	if err != nil {
		return c.lost(err)
	}
	defer ch.Close()
	id, cl, err := c.conn.start(map[string]any{"op": "put", "path": path, "size": size, "mode": uint32(mode.Perm()), "sha256": sum, "ch": ch.id}, false)
	if err != nil {
		return c.lost(err)
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	sendErr := make(chan error, 1)
	go func() {
		h := sha256.New()
		w := io.MultiWriter(ch, h)
		var n int64
		buf := make([]byte, chunk)
		for sctx.Err() == nil {
			m, rerr := r.Read(buf)
			if m > 0 {
				if _, err := w.Write(buf[:m]); err != nil {
					sendErr <- err
					return
				}
				n += int64(m)
				if progress != nil {
					progress(n)
				}
			}
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				// Reading locally failed: cut the upload short; the core
				// then refuses it for its size and leaves nothing behind.
				_ = ch.CloseWrite()
				sendErr <- fmt.Errorf("reading local data: %w", rerr)
				return
			}
		}
		_ = ch.CloseWrite()
		sendErr <- nil
	}()
	var resp struct {
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
	}
	err = c.conn.wait(ctx, id, cl, &resp)
	stop()
	if err != nil {
		var se *sdk.Error
		if ok := asSdk(err, &se); ok && se.Kind == sdk.KindFS {
			se.Msg = fmt.Sprintf("put %s: %s", path, se.Msg)
		}
		select {
		case lerr := <-sendErr:
			if lerr != nil && sdk.KindOf(err) == sdk.KindFS {
				return lerr
			}
		default:
		}
		return err
	}
	if lerr := <-sendErr; lerr != nil {
		return lerr
	}
	return nil
}

func asSdk(err error, se **sdk.Error) bool {
	e, ok := err.(*sdk.Error)
	if ok {
		*se = e
	}
	return ok
}

// PutFile copies a local file to the target atomically, keeping its mode
// unless mode is non-zero.
func (c *Context) PutFile(ctx context.Context, local, remote string, mode os.FileMode, progress func(done, total int64)) error {
	f, err := os.Open(local)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("%s is a directory", local)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if mode == 0 {
		mode = st.Mode().Perm()
	}
	var pf func(int64)
	if progress != nil {
		pf = func(n int64) { progress(n, st.Size()) }
	}
	return c.Put(ctx, f, st.Size(), remote, mode, hex.EncodeToString(h.Sum(nil)), pf)
}

// Get streams a remote file into w and checks its size and sha256. It
// returns the file's information.
func (c *Context) Get(ctx context.Context, path string, w io.Writer, progress func(done, total int64)) (*FileInfo, error) {
	ch, err := c.conn.newChannel()
	if err != nil {
		return nil, c.lost(err)
	}
	defer ch.Close()
	id, cl, err := c.conn.start(map[string]any{"op": "get", "path": path, "ch": ch.id}, true)
	if err != nil {
		return nil, c.lost(err)
	}
	defer c.conn.forget(id)
	var fi FileInfo
	if err := c.conn.wait(ctx, id, cl, &fi); err != nil {
		var se *sdk.Error
		if asSdk(err, &se) && se.Kind == sdk.KindFS {
			se.Msg = fmt.Sprintf("get %s: %s", path, se.Msg)
		}
		return nil, err
	}
	h := sha256.New()
	var n int64
	buf := make([]byte, chunk)
	for {
		m, rerr := ch.Read(buf)
		if m > 0 {
			if _, err := w.Write(buf[:m]); err != nil {
				return nil, err
			}
			h.Write(buf[:m])
			n += int64(m)
			if progress != nil {
				progress(n, fi.Size)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return nil, rerr
		}
	}
	var ev struct {
		SHA256 string `json:"sha256"`
		Error  string `json:"error"`
	}
	select {
	case f := <-cl.events:
		if err := json.Unmarshal(f.Payload, &ev); err != nil {
			return nil, protocolError("get event: %v", err)
		}
	case <-c.conn.done:
		return nil, c.conn.Err()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if ev.Error != "" {
		return nil, &sdk.Error{Kind: sdk.KindFS, Msg: fmt.Sprintf("get %s: %s", path, ev.Error)}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != ev.SHA256 {
		return nil, &sdk.Error{Kind: sdk.KindProtocol, Msg: fmt.Sprintf("get %s: sha256 mismatch (received %d bytes)", path, n)}
	}
	fi.Size = n
	return &fi, nil
}
