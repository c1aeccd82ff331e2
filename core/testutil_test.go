package core

import (
	"io"
	"net"
	"time"
)

type rwc struct {
	io.Reader
	io.Writer
	c net.Conn
}

func (r rwc) Close() error { return r.c.Close() }

// pipePair returns two connected in-memory streams.
func pipePair() (io.ReadWriteCloser, io.ReadWriteCloser) {
	a, b := net.Pipe()
	return rwc{a, a, a}, rwc{b, b, b}
}

func timeAfter(seconds int) <-chan time.Time { return time.After(time.Duration(seconds) * time.Second) }
