package core

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/sporehq/spore/sdk"
)

func TestReadFrame(t *testing.T) {
	credit := make([]byte, 4)
	binary.BigEndian.PutUint32(credit, 4096)
	big := make([]byte, MaxPayload)
	tests := []struct {
		name    string
		in      []byte
		want    Frame
		wantErr sdk.Kind
		eof     error
	}{
		{"request", AppendFrame(nil, FrameRequest, 7, []byte(`{"op":"ping"}`)), Frame{FrameRequest, 7, []byte(`{"op":"ping"}`)}, "", nil},
		{"empty eof", AppendFrame(nil, FrameEOF, 3, nil), Frame{FrameEOF, 3, []byte{}}, "", nil},
		{"credit", AppendFrame(nil, FrameCredit, 3, credit), Frame{FrameCredit, 3, credit}, "", nil},
		{"largest allowed", AppendFrame(nil, FrameData, 1, big), Frame{FrameData, 1, big}, "", nil},
		{"oversized", append([]byte{FrameData, 0, 0, 0, 1, 0, 0x10, 0, 1}, make([]byte, 16)...), Frame{}, sdk.KindProtocol, nil},
		{"huge length", []byte{FrameData, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff}, Frame{}, sdk.KindProtocol, nil},
		{"unknown type", AppendFrame(nil, 42, 1, nil), Frame{}, sdk.KindProtocol, nil},
		{"type zero", AppendFrame(nil, 0, 1, nil), Frame{}, sdk.KindProtocol, nil},
		{"bad credit", AppendFrame(nil, FrameCredit, 1, []byte{1, 2}), Frame{}, sdk.KindProtocol, nil},
		{"cut in header", []byte{FrameData, 0, 0}, Frame{}, "", io.ErrUnexpectedEOF},
		{"cut in payload", AppendFrame(nil, FrameData, 1, []byte("hello"))[:12], Frame{}, "", io.ErrUnexpectedEOF},
		{"nothing", nil, Frame{}, "", io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ReadFrame(bufio.NewReader(bytes.NewReader(tt.in)))
			switch {
			case tt.wantErr != "":
				if sdk.KindOf(err) != tt.wantErr {
					t.Fatalf("err = %v, want kind %s", err, tt.wantErr)
				}
			case tt.eof != nil:
				if !errors.Is(err, tt.eof) {
					t.Fatalf("err = %v, want %v", err, tt.eof)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if f.Type != tt.want.Type || f.ID != tt.want.ID || !bytes.Equal(f.Payload, tt.want.Payload) {
					t.Fatalf("got %v, want %v", f, tt.want)
				}
			}
		})
	}
}

func TestFrameRoundTripStream(t *testing.T) {
	var buf []byte
	for i := 0; i < 100; i++ {
		buf = AppendFrame(buf, FrameData, uint32(i), bytes.Repeat([]byte{byte(i)}, i*37))
	}
	r := bufio.NewReader(bytes.NewReader(buf))
	for i := 0; i < 100; i++ {
		f, err := ReadFrame(r)
		if err != nil || f.ID != uint32(i) || len(f.Payload) != i*37 {
			t.Fatalf("frame %d: %v %v", i, f, err)
		}
	}
	if _, err := ReadFrame(r); err != io.EOF {
		t.Fatalf("after the last frame: %v", err)
	}
}

// FuzzReadFrame checks that no input makes the decoder panic, allocate
// beyond the maximum, or accept a frame it would refuse to encode.
func FuzzReadFrame(f *testing.F) {
	f.Add(AppendFrame(nil, FrameRequest, 1, []byte(`{"op":"hello"}`)))
	f.Add(AppendFrame(nil, FrameCredit, 2, []byte{0, 0, 1, 0}))
	f.Add([]byte{FrameData, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Add(append(AppendFrame(nil, FrameEOF, 9, nil), 1, 2, 3))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReader(bytes.NewReader(in))
		for {
			fr, err := ReadFrame(r)
			if err != nil {
				return
			}
			if len(fr.Payload) > MaxPayload || fr.Type < FrameRequest || fr.Type > FrameEvent {
				t.Fatalf("accepted %v", fr)
			}
			again := AppendFrame(nil, fr.Type, fr.ID, fr.Payload)
			if fr2, err := ReadFrame(bufio.NewReader(bytes.NewReader(again))); err != nil || fr2.ID != fr.ID || !bytes.Equal(fr2.Payload, fr.Payload) {
				t.Fatalf("re-encoding %v gave %v, %v", fr, fr2, err)
			}
		}
	})
}

// A core that sends garbage, an oversized frame or a reply to a request
// never made ends the connection with a protocol error; nothing hangs.
func TestConnRejectsHostileCore(t *testing.T) {
	cases := map[string][]byte{
		"oversized":       {FrameData, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff},
		"unknown reply":   AppendFrame(nil, FrameReply, 99, []byte(`{}`)),
		"unknown chan":    AppendFrame(nil, FrameData, 12, []byte("x")),
		"request to host": AppendFrame(nil, FrameRequest, 1, []byte(`{"op":"spawn"}`)),
		"garbage":         []byte("this is not a frame at all, just text\n"),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			hostSide, coreSide := pipePair()
			c := newConn("test", hostSide, hostSide)
			go func() { _, _ = coreSide.Write(in) }()
			select {
			case <-c.done:
			case <-timeAfter(5):
				t.Fatal("connection still up after a hostile frame")
			}
			if k := sdk.KindOf(c.Err()); k != sdk.KindProtocol {
				t.Fatalf("err = %v (kind %s), want protocol", c.Err(), k)
			}
		})
	}
}
