package core

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/sporehq/spore/sdk"
)

// conn multiplexes requests and channels over one booted core's stream.
type conn struct {
	rw   io.ReadWriteCloser
	r    *bufio.Reader
	name string

	// Writers take wmu; the last of a group of concurrent writers flushes,
	// so a lone request costs one write and a burst shares one.
	wmu     sync.Mutex
	w       *bufio.Writer
	writers atomic.Int32
	// closeErr, once set, is the cause reported when the stream ends.
	closeErr atomic.Pointer[error]
	done     chan struct{}

	mu        sync.Mutex
	err       error
	calls     map[uint32]*call
	chans     map[uint32]*Channel
	nextReq   uint32
	nextChan  uint32
	closeOnce sync.Once
}

type call struct {
	reply  chan Frame
	events chan Frame // nil: events are not wanted
}

// spinPolls is how many times wait polls for a reply before parking.
var spinPolls = 200

// newConn starts the reader and writer of a connection whose handshake is
// done. r must hold any bytes already read past the second marker.
func newConn(name string, rw io.ReadWriteCloser, r io.Reader) *conn {
	c := &conn{
		rw:    rw,
		r:     bufio.NewReaderSize(r, 256<<10),
		name:  name,
		w:     bufio.NewWriterSize(rw, 256<<10),
		done:  make(chan struct{}),
		calls: map[uint32]*call{},
		chans: map[uint32]*Channel{},
	}
	go c.readLoop()
	return c
}

// Err returns why the connection ended, or nil while it is up.
func (c *conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// fail ends the connection with cause err (the first cause wins).
func (c *conn) fail(err error) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.err = err
		chans := c.chans
		c.calls = map[uint32]*call{}
		c.chans = map[uint32]*Channel{}
		c.mu.Unlock()
		// Pending calls wake on done and read err.
		close(c.done)
		_ = c.rw.Close()
		for _, ch := range chans {
			ch.fail(err)
		}
	})
}

func (c *conn) send(t uint8, id uint32, payload []byte) error {
	var h [HeaderSize]byte
	h[0] = t
	binary.BigEndian.PutUint32(h[1:5], id)
	binary.BigEndian.PutUint32(h[5:9], uint32(len(payload)))
	c.writers.Add(1)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	last := c.writers.Add(-1) == 0
	select {
	case <-c.done:
		return c.Err()
	default:
	}
	_, err := c.w.Write(h[:])
	if err == nil {
		_, err = c.w.Write(payload)
	}
	if err == nil && last {
		err = c.w.Flush()
	}
	if err != nil {
		err = lostError(c.name, err)
		go c.fail(err)
		return err
	}
	return nil
}

// closing records that the host is closing the connection on purpose, so
// that the EOF which follows is reported as closed rather than lost.
func (c *conn) closing(err error) {
	c.closeErr.Store(&err)
}

func (c *conn) readLoop() {
	for {
		f, err := ReadFrame(c.r)
		if err != nil {
			if ce := c.closeErr.Load(); ce != nil {
				err = *ce
			} else if sdk.KindOf(err) != sdk.KindProtocol {
				err = lostError(c.name, err)
			}
			c.fail(err)
			return
		}
		if err := c.dispatch(f); err != nil {
			c.fail(err)
			return
		}
		if c.r.Buffered() == 0 {
			// The next read may block this thread in a syscall while it
			// keeps its P: let the goroutine just woken (the caller
			// waiting for this reply) run first.
			runtime.Gosched()
		}
	}
}

func (c *conn) dispatch(f Frame) error {
	switch f.Type {
	case FrameReply, FrameEvent:
		c.mu.Lock()
		cl := c.calls[f.ID]
		if f.Type == FrameReply && cl != nil && cl.events == nil {
			delete(c.calls, f.ID)
		}
		known := f.ID != 0 && f.ID <= c.nextReq
		c.mu.Unlock()
		if !known {
			return protocolError("reply for request %d, which was never sent", f.ID)
		}
		if cl == nil {
			return nil
		}
		if f.Type == FrameReply {
			select {
			case cl.reply <- f:
			default:
				return protocolError("second reply for request %d", f.ID)
			}
		} else if cl.events != nil {
			select {
			case cl.events <- f:
			default:
				return protocolError("too many events for request %d", f.ID)
			}
		}
		return nil
	case FrameData, FrameEOF, FrameCredit:
		c.mu.Lock()
		ch := c.chans[f.ID]
		known := f.ID != 0 && f.ID <= c.nextChan
		c.mu.Unlock()
		if !known {
			return protocolError("frame for channel %d, which was never opened", f.ID)
		}
		if ch == nil {
			return nil // closed here; late frames are expected
		}
		return ch.deliver(f)
	default:
		return protocolError("unexpected frame type %d from the core", f.Type)
	}
}

func protocolError(format string, args ...any) error {
	return sdk.Errorf(sdk.KindProtocol, "protocol error: "+format, args...)
}

func lostError(name string, err error) error {
	var se *sdk.Error
	if errors.As(err, &se) {
		return err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &sdk.Error{Kind: sdk.KindParentLost, Msg: fmt.Sprintf("connection to %s lost", name), Err: err}
	}
	return &sdk.Error{Kind: sdk.KindParentLost, Msg: fmt.Sprintf("connection to %s lost: %v", name, err), Err: err}
}

// remoteError is the error member of a reply.
type remoteError struct {
	Kind      string `json:"kind"`
	Msg       string `json:"msg"`
	Type      string `json:"type,omitempty"`
	Traceback string `json:"traceback,omitempty"`
}

func (e *remoteError) toError(name string) error {
	k := sdk.Kind(e.Kind)
	if e.Kind == "" {
		k = sdk.KindRemote
	}
	se := &sdk.Error{Kind: k, Msg: e.Msg}
	if e.Type != "" {
		se.Msg = e.Type + ": " + e.Msg
		se.WithDetail("type", e.Type)
	}
	if e.Traceback != "" {
		se.WithDetail("traceback", e.Traceback)
	}
	return se
}

// start sends a request and registers for its reply (and events).
func (c *conn) start(req any, wantEvents bool) (uint32, *call, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return 0, nil, err
	}
	cl := &call{reply: make(chan Frame, 1)}
	if wantEvents {
		cl.events = make(chan Frame, 8)
	}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return 0, nil, err
	}
	c.nextReq++
	id := c.nextReq
	c.calls[id] = cl
	c.mu.Unlock()
	if err := c.send(FrameRequest, id, b); err != nil {
		c.forget(id)
		return 0, nil, err
	}
	return id, cl, nil
}

func (c *conn) forget(id uint32) {
	c.mu.Lock()
	delete(c.calls, id)
	c.mu.Unlock()
}

// wait waits for the reply of call id and decodes it into resp.
func (c *conn) wait(ctx context.Context, id uint32, cl *call, resp any) error {
	// A reply to a small request often comes back within microseconds:
	// poll for it briefly before parking, so the reader's hand-off needs no
	// wake-up of another thread.
	for i := 0; i < spinPolls; i++ {
		select {
		case f := <-cl.reply:
			return c.decodeReply(f, resp)
		default:
			runtime.Gosched()
		}
	}
	select {
	case f := <-cl.reply:
		return c.decodeReply(f, resp)
	case <-c.done:
		// A reply may have been queued just before the end.
		select {
		case f := <-cl.reply:
			return c.decodeReply(f, resp)
		default:
		}
		return c.Err()
	case <-ctx.Done():
		c.forget(id)
		return ctx.Err()
	}
}

func (c *conn) decodeReply(f Frame, resp any) error {
	var head struct {
		Error *remoteError `json:"error"`
	}
	if err := json.Unmarshal(f.Payload, &head); err != nil {
		err = protocolError("undecodable reply: %v", err)
		c.fail(err)
		return err
	}
	if head.Error != nil {
		return head.Error.toError(c.name)
	}
	if resp == nil {
		return nil
	}
	if err := json.Unmarshal(f.Payload, resp); err != nil {
		err = protocolError("undecodable reply: %v", err)
		c.fail(err)
		return err
	}
	return nil
}

// call sends req and waits for its reply.
func (c *conn) call(ctx context.Context, req, resp any) error {
	id, cl, err := c.start(req, false)
	if err != nil {
		return err
	}
	return c.wait(ctx, id, cl, resp)
}

// newChannel allocates a channel id.
func (c *conn) newChannel() (*Channel, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, c.err
	}
	c.nextChan++
	ch := &Channel{c: c, id: c.nextChan, credit: Window}
	ch.cond = sync.NewCond(&ch.mu)
	c.chans[ch.id] = ch
	return ch, nil
}

func (c *conn) dropChannel(id uint32) {
	c.mu.Lock()
	delete(c.chans, id)
	c.mu.Unlock()
}

// Channel is one multiplexed byte stream between the host and a core, with
// flow control in each direction. Read returns io.EOF after the core's EOF;
// CloseWrite sends EOF; Close discards the channel on both sides.
type Channel struct {
	c  *conn
	id uint32

	mu       sync.Mutex
	cond     *sync.Cond
	rbuf     [][]byte
	rlen     int
	reof     bool
	err      error
	consumed int
	credit   int
	wclosed  bool
	closed   bool
}

func (ch *Channel) deliver(f Frame) error {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	switch f.Type {
	case FrameData:
		if ch.reof {
			return protocolError("data after EOF on channel %d", ch.id)
		}
		ch.rlen += len(f.Payload)
		if ch.rlen > Window {
			return protocolError("channel %d overran its window", ch.id)
		}
		if len(f.Payload) > 0 {
			ch.rbuf = append(ch.rbuf, f.Payload)
		}
	case FrameEOF:
		ch.reof = true
	case FrameCredit:
		ch.credit += int(binary.BigEndian.Uint32(f.Payload))
	}
	ch.cond.Broadcast()
	return nil
}

func (ch *Channel) fail(err error) {
	ch.mu.Lock()
	if ch.err == nil {
		ch.err = err
	}
	ch.cond.Broadcast()
	ch.mu.Unlock()
}

// Read reads bytes the core sent on the channel.
func (ch *Channel) Read(p []byte) (int, error) {
	ch.mu.Lock()
	for len(ch.rbuf) == 0 && !ch.reof && ch.err == nil && !ch.closed {
		ch.cond.Wait()
	}
	if len(ch.rbuf) == 0 {
		defer ch.mu.Unlock()
		if ch.reof {
			return 0, io.EOF
		}
		if ch.closed {
			return 0, io.ErrClosedPipe
		}
		return 0, ch.err
	}
	n := copy(p, ch.rbuf[0])
	if n == len(ch.rbuf[0]) {
		ch.rbuf[0] = nil
		ch.rbuf = ch.rbuf[1:]
	} else {
		ch.rbuf[0] = ch.rbuf[0][n:]
	}
	ch.rlen -= n
	ch.consumed += n
	grant := 0
	if ch.consumed >= Window/4 || (len(ch.rbuf) == 0 && ch.consumed >= chunk) {
		grant = ch.consumed
		ch.consumed = 0
	}
	ch.mu.Unlock()
	if grant > 0 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(grant))
		_ = ch.c.send(FrameCredit, ch.id, b[:])
	}
	return n, nil
}

// Write sends p to the core, waiting for credit as needed.
func (ch *Channel) Write(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		ch.mu.Lock()
		for ch.credit <= 0 && ch.err == nil && !ch.closed && !ch.wclosed {
			ch.cond.Wait()
		}
		if ch.err != nil || ch.closed || ch.wclosed {
			err := ch.err
			if err == nil {
				err = io.ErrClosedPipe
			}
			ch.mu.Unlock()
			return total, err
		}
		n := len(p)
		if n > ch.credit {
			n = ch.credit
		}
		if n > chunk {
			n = chunk
		}
		ch.credit -= n
		ch.mu.Unlock()
		if err := ch.c.send(FrameData, ch.id, p[:n]); err != nil {
			return total, err
		}
		total += n
		p = p[n:]
	}
	return total, nil
}

// CloseWrite tells the core no more data follows (the remote reader sees
// EOF).
func (ch *Channel) CloseWrite() error {
	ch.mu.Lock()
	if ch.wclosed || ch.closed {
		ch.mu.Unlock()
		return nil
	}
	ch.wclosed = true
	ch.cond.Broadcast()
	ch.mu.Unlock()
	return ch.c.send(FrameEOF, ch.id, nil)
}

// Close discards the channel: the core closes its ends, and later frames
// for it are dropped.
func (ch *Channel) Close() error {
	ch.mu.Lock()
	if ch.closed {
		ch.mu.Unlock()
		return nil
	}
	ch.closed = true
	ch.rbuf = nil
	ch.cond.Broadcast()
	ch.mu.Unlock()
	ch.c.dropChannel(ch.id)
	if ch.c.Err() != nil {
		return nil
	}
	return ch.c.send(FrameClose, ch.id, nil)
}

// ID is the channel's number on its connection.
func (ch *Channel) ID() uint32 { return ch.id }
