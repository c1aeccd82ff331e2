package core

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/sporehq/spore/sdk"
)

// Frame types of the wire protocol (docs/protocol.md).
const (
	FrameRequest = 1 // host → core: JSON request, ID = request id
	FrameReply   = 2 // core → host: JSON reply, ID = request id
	FrameData    = 3 // either way: raw bytes, ID = channel
	FrameEOF     = 4 // either way: no more data on the channel in this direction
	FrameCredit  = 5 // either way: 4-byte big-endian window increment
	FrameClose   = 6 // host → core: discard the channel
	FrameEvent   = 7 // core → host: JSON event for a request (exit status)
)

// HeaderSize is the size of a frame header: type (1), id (4), length (4).
const HeaderSize = 9

// MaxPayload is the largest payload either side accepts; a longer frame is
// a protocol error that ends the connection.
const MaxPayload = 1 << 20

// Window is each channel's initial credit in each direction: how many bytes
// a sender may have in flight before the receiver grants more.
const Window = 1 << 21

// chunk is the largest DATA payload the host sends.
const chunk = 1 << 17

// Frame is one decoded frame.
type Frame struct {
	Type    uint8
	ID      uint32
	Payload []byte
}

// AppendFrame appends the encoding of a frame to dst.
func AppendFrame(dst []byte, t uint8, id uint32, payload []byte) []byte {
	var h [HeaderSize]byte
	h[0] = t
	binary.BigEndian.PutUint32(h[1:5], id)
	binary.BigEndian.PutUint32(h[5:9], uint32(len(payload)))
	dst = append(dst, h[:]...)
	return append(dst, payload...)
}

// ReadFrame reads one frame from r. A frame with an unknown type or a
// payload over MaxPayload is a *sdk.Error of KindProtocol; a stream that
// ends inside a frame is io.ErrUnexpectedEOF.
func ReadFrame(r *bufio.Reader) (Frame, error) {
	var h [HeaderSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return Frame{}, err
	}
	f := Frame{Type: h[0], ID: binary.BigEndian.Uint32(h[1:5])}
	n := binary.BigEndian.Uint32(h[5:9])
	if f.Type < FrameRequest || f.Type > FrameEvent {
		return Frame{}, sdk.Errorf(sdk.KindProtocol, "protocol error: unknown frame type %d", f.Type)
	}
	if n > MaxPayload {
		return Frame{}, sdk.Errorf(sdk.KindProtocol, "protocol error: frame of %d bytes exceeds the %d-byte maximum", n, MaxPayload)
	}
	f.Payload = make([]byte, n)
	if _, err := io.ReadFull(r, f.Payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	if f.Type == FrameCredit && n != 4 {
		return Frame{}, sdk.Errorf(sdk.KindProtocol, "protocol error: credit frame of %d bytes", n)
	}
	return f, nil
}

// String describes the frame for logs: type, id and payload length.
func (f Frame) String() string {
	return fmt.Sprintf("frame{type %d id %d len %d}", f.Type, f.ID, len(f.Payload))
}
