package proxy

import (
	"context"
	"net"
	"sync"
	"syscall"
	"time"
)

// clientWatchInterval is how often a waiting request checks whether its
// client is still connected. fasthttp does not report disconnects
// (valyala/fasthttp#468, #965), so fcd peeks at the socket itself.
const clientWatchInterval = 100 * time.Millisecond

// clientWatch calls gone once, with errAborted, if the client's connection
// reaches EOF while the request is in flight, or with fcd's cause when fcd
// stops for good (Server.Serve past its grace). The first check runs after
// one interval, so a fast request costs one timer and no goroutine, and no
// registration with fcd's context, which every request would contend on.
type clientWatch struct {
	mu    sync.Mutex
	conn  syscall.RawConn // nil: a connection that cannot be peeked at
	hard  context.Context // fcd's: done when requests in flight must end
	timer *time.Timer
	gone  clientGoner
	done  bool
}

// clientGoner learns that a request's client went away (errAborted) or
// that fcd stops for good (its cause).
type clientGoner interface{ clientGone(cause error) }

// start watches client connection c, which may be nil (no client).
func (w *clientWatch) start(c net.Conn, hard context.Context, gone clientGoner) {
	w.hard, w.gone = hard, gone
	switch c := c.(type) {
	case *fastWriteConn:
		w.conn = c.raw // no allocation
	case syscall.Conn:
		if raw, err := c.SyscallConn(); err == nil {
			w.conn = raw
		}
	}
	w.mu.Lock()
	w.timer = time.AfterFunc(clientWatchInterval, w.check)
	w.mu.Unlock()
}

func (w *clientWatch) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	cause := context.Cause(w.hard)
	if cause == nil && w.conn != nil && peerClosed(w.conn) {
		cause = errAborted
	}
	if cause != nil {
		w.done = true
		go w.gone.clientGone(cause)
		return
	}
	w.timer.Reset(clientWatchInterval)
}

// stop ends the watch. It is safe on a nil watch.
func (w *clientWatch) stop() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.done = true
	w.timer.Stop()
	w.mu.Unlock()
}

// peerClosed reports whether the peer closed the connection: a
// non-blocking MSG_PEEK that reads zero bytes is EOF. Bytes waiting in the
// socket (a client's pipelined request) mean the peer is alive.
func peerClosed(raw syscall.RawConn) bool {
	var closed bool
	var buf [1]byte
	raw.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK || err == syscall.EINTR:
		case err != nil:
			closed = true // ECONNRESET and the like
		case n == 0:
			closed = true
		}
		return true // never wait for readiness
	})
	return closed
}
