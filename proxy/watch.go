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

// clientWatcherIdle is how many empty rounds the watcher's goroutine waits
// for a request before it exits; the next request starts it again.
const clientWatcherIdle = 10

// clientWatcher watches the clients of the requests in flight from one
// goroutine that checks them all every clientWatchInterval: a request
// costs a link into a list and no timer. A timer per request (armed and
// stopped by every request) wakes an idle thread of the Go scheduler each
// time it is armed, since the new timer might be the next to fire: at low
// concurrency that was a sixth of fcd's CPU per request. The goroutine
// runs while requests are in flight and exits clientWatcherIdle rounds
// after the last one.
type clientWatcher struct {
	mu      sync.Mutex
	head    clientWatch // the list's sentinel
	running bool
	checks  []*clientWatch // the round's, reused
}

// clientWatch calls gone once, with errAborted, if the client's connection
// reaches EOF while the request is in flight, or with fcd's cause when fcd
// stops for good (Server.Serve past its grace).
type clientWatch struct {
	conn syscall.RawConn // nil: a connection that cannot be peeked at
	// blind, instead, is a served connection waiting for its client's
	// next request after a deferred response, which the watcher peeks
	// at once (fastwrite.go's Deferred responses).
	blind      *fastWriteConn
	hard       context.Context // fcd's: done when requests in flight must end
	gone       clientGoner
	prev, next *clientWatch // in the watcher's list, guarded by its mu
	w          *clientWatcher
	done       bool // guarded by w.mu
}

// clientGoner learns that a request's client went away (errAborted) or
// that fcd stops for good (its cause).
type clientGoner interface{ clientGone(cause error) }

// start watches client connection c, which may be nil (no client).
func (cw *clientWatch) start(w *clientWatcher, c net.Conn, hard context.Context, gone clientGoner) {
	cw.w, cw.hard, cw.gone = w, hard, gone
	switch c := c.(type) {
	case *fastWriteConn:
		cw.conn = c.raw // no allocation
	case syscall.Conn:
		if raw, err := c.SyscallConn(); err == nil {
			cw.conn = raw
		}
	}
	w.link(cw)
}

// startBlind watches the wait of a served connection for its client's
// next request.
func (cw *clientWatch) startBlind(w *clientWatcher, c *fastWriteConn) {
	cw.w, cw.blind = w, c
	w.link(cw)
}

func (w *clientWatcher) link(cw *clientWatch) {
	w.mu.Lock()
	cw.done = false
	if w.head.next == nil {
		w.head.next, w.head.prev = &w.head, &w.head
	}
	cw.prev, cw.next = w.head.prev, &w.head
	w.head.prev.next = cw
	w.head.prev = cw
	if !w.running {
		w.running = true
		go w.run()
	}
	w.mu.Unlock()
}

// stop ends the watch.
func (cw *clientWatch) stop() {
	w := cw.w
	w.mu.Lock()
	cw.unlinkLocked()
	w.mu.Unlock()
}

func (cw *clientWatch) unlinkLocked() {
	if cw.done {
		return
	}
	cw.done = true
	cw.prev.next, cw.next.prev = cw.next, cw.prev
	cw.prev, cw.next = nil, nil
}

// run checks the watched requests every interval until there have been
// none for clientWatcherIdle rounds.
func (w *clientWatcher) run() {
	t := time.NewTicker(clientWatchInterval)
	defer t.Stop()
	for idle := 0; ; {
		<-t.C
		w.mu.Lock()
		if w.head.next == &w.head {
			if idle++; idle >= clientWatcherIdle {
				w.running = false
				w.mu.Unlock()
				return
			}
			w.mu.Unlock()
			continue
		}
		idle = 0
		checks := w.checks[:0]
		for cw := w.head.next; cw != &w.head; cw = cw.next {
			checks = append(checks, cw)
		}
		w.checks = checks
		w.mu.Unlock()
		w.check(checks)
	}
}

// check ends the watches in checks whose client left, peeking at the
// sockets outside the lock: a request may end meanwhile, and its watch is
// then left alone.
func (w *clientWatcher) check(checks []*clientWatch) {
	for i, cw := range checks {
		checks[i] = nil // the next round's slice must not pin it
		if cw.blind != nil {
			w.checkBlind(cw)
			continue
		}
		cause := context.Cause(cw.hard)
		if cause == nil && cw.peerClosed() {
			cause = errAborted
		}
		if cause == nil {
			continue
		}
		w.mu.Lock()
		ended := cw.done
		cw.unlinkLocked()
		w.mu.Unlock()
		if !ended {
			go cw.gone.clientGone(cause)
		}
	}
}

// checkBlind ends the watch of a blind wait: one look suffices, since
// whatever arrives after it wakes the wait. Bytes (or an end) already
// there arrived before the wait began, and would not: the watcher wakes
// it.
func (w *clientWatcher) checkBlind(cw *clientWatch) {
	ready := cw.blind.readable()
	w.mu.Lock()
	if !cw.done {
		cw.unlinkLocked()
		if ready {
			cw.blind.wakeBlind()
		}
	}
	w.mu.Unlock()
}

// peerClosed reports whether the watched client closed its connection.
func (cw *clientWatch) peerClosed() bool {
	if cw.conn == nil {
		return false
	}
	return peerClosed(cw.conn)
}

// peerClosed reports whether the peer closed the connection: a
// non-blocking MSG_PEEK that reads zero bytes is EOF. Bytes waiting in the
// socket (a client's pipelined request) mean the peer is alive.
func peerClosed(raw syscall.RawConn) bool {
	closed, _ := peek(raw)
	return closed
}

// peek is peerClosed, with the error that kept it from the socket (a
// closed connection). It runs beside any Read in progress: RawConn.Control
// takes neither the read lock a waiting Read holds (a request's watch may
// outlive it by a round, when its connection already waits for the next
// request) nor looks at deadlines.
func peek(raw syscall.RawConn) (closed bool, err error) {
	var buf [1]byte
	err = raw.Control(func(fd uintptr) {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK || err == syscall.EINTR:
		case err != nil:
			closed = true // ECONNRESET and the like
		case n == 0:
			closed = true
		}
	})
	return closed, err
}
