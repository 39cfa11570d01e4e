package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// fastPair returns the two ends of a loopback TCP connection, the
// dialled one wrapped in a fastWriteConn whatever the build.
func fastPair(t *testing.T) (*fastWriteConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	fc, err := newFastWriteConn(c.(*net.TCPConn))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fc.Close(); peer.Close() })
	return fc, peer
}

// TestFastWriteConnCopies sends more than the socket buffers hold each
// way, so writes meet EAGAIN and wait, and reads come in pieces.
func TestFastWriteConnCopies(t *testing.T) {
	fc, peer := fastPair(t)
	want := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	go func() {
		// The peer echoes everything back.
		io.Copy(peer, peer)
	}()
	werr := make(chan error, 1)
	go func() {
		_, err := fc.Write(want)
		werr <- err
	}()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(fc, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("got different bytes back than were sent")
	}
}

func TestFastWriteConnEOF(t *testing.T) {
	fc, peer := fastPair(t)
	peer.Write([]byte("last"))
	peer.Close()
	got, err := io.ReadAll(fc)
	if err != nil || string(got) != "last" {
		t.Fatalf("got %q, %v; want \"last\", nil", got, err)
	}
	if n, err := fc.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("read after EOF: got %d, %v; want 0, EOF", n, err)
	}
}

// TestFastWriteConnDeadline: a past deadline ends a blocked read and a
// blocked write, as call.abort relies on.
func TestFastWriteConnDeadline(t *testing.T) {
	fc, _ := fastPair(t)
	errc := make(chan error, 2)
	go func() {
		_, err := fc.Read(make([]byte, 1)) // the peer sends nothing
		errc <- err
	}()
	go func() {
		// The peer reads nothing: this blocks once the buffers are full.
		_, err := fc.Write(make([]byte, 64<<20))
		errc <- err
	}()
	// A deadline already past when Read or Write start fails them at
	// once, so this holds wherever they are when it is set.
	fc.SetDeadline(time.Unix(1, 0))
	for range 2 {
		if err := <-errc; !isTimeout(err) {
			t.Fatalf("got %v, want a timeout", err)
		}
	}
}

func TestFastWriteConnPeerGone(t *testing.T) {
	fc, peer := fastPair(t)
	// SO_LINGER 0: the close resets the connection.
	peer.(*net.TCPConn).SetLinger(0)
	peer.Close()
	// On loopback the reset has arrived when Close returns.
	_, err := fc.Write([]byte("x"))
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Fatalf("got %v, want a *net.OpError", err)
	}
}

// TestWriteThenAwaitRead: the request is written whole and the call
// returns once the answer can be read, which the next Read gets.
func TestWriteThenAwaitRead(t *testing.T) {
	fc, peer := fastPair(t)
	go io.Copy(peer, peer) // the peer echoes
	for _, msg := range []string{"first", "second"} {
		n, err := fc.writeThenAwaitRead([]byte(msg))
		if n != len(msg) || err != nil {
			t.Fatalf("got %d, %v; want %d, nil", n, err, len(msg))
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(fc, got); err != nil || string(got) != msg {
			t.Fatalf("got %q, %v; want %q", got, err, msg)
		}
	}
}

// TestWriteThenAwaitReadFullBuffer: a write the socket buffers cannot
// take returns early, without an error, for the caller to finish.
func TestWriteThenAwaitReadFullBuffer(t *testing.T) {
	fc, peer := fastPair(t)
	big := make([]byte, 64<<20) // the peer reads none of it yet
	n, err := fc.writeThenAwaitRead(big)
	if err != nil || n == 0 || n >= len(big) {
		t.Fatalf("got %d, %v; want 0 < n < %d, nil", n, err, len(big))
	}
	go io.Copy(io.Discard, peer)
	if _, err := fc.Write(big[n:]); err != nil {
		t.Fatalf("writing the rest: %v", err)
	}
}

// TestWriteThenAwaitReadPeerGone: a peer that reset the connection fails
// the write.
func TestWriteThenAwaitReadPeerGone(t *testing.T) {
	fc, peer := fastPair(t)
	peer.(*net.TCPConn).SetLinger(0)
	peer.Close()
	if _, err := fc.writeThenAwaitRead([]byte("x")); err == nil {
		t.Fatal("got no error writing to a reset connection")
	}
}

// TestWriteThenAwaitReadDeadline: a deadline that passes while the answer
// is awaited ends the wait; the next Read reports it.
func TestWriteThenAwaitReadDeadline(t *testing.T) {
	fc, peer := fastPair(t)
	go io.Copy(io.Discard, peer) // reads, never answers
	done := make(chan error, 1)
	go func() {
		if _, err := fc.writeThenAwaitRead([]byte("x")); err != nil {
			done <- err
			return
		}
		_, err := fc.Read(make([]byte, 1))
		done <- err
	}()
	fc.SetReadDeadline(time.Unix(1, 0))
	if err := <-done; !isTimeout(err) {
		t.Fatalf("got %v, want a timeout", err)
	}
}
