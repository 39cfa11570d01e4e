package proxy

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// fastWriteConn is a TCP connection whose reads and writes do not tell the
// Go scheduler they are system calls.
//
// A write to a socket on this host runs the receiver's whole network stack
// inline (loopback and the instances' veth pairs deliver in the writer's
// softirq), which takes tens of microseconds. The runtime's sysmon takes
// the P away from a thread that sits in a system call that long, wakes
// another thread to run it, and parks the writer when its write returns:
// futex wake-ups and a trip through the scheduler for every write. And
// every system call entered while sysmon sleeps deeply (whenever fcd was
// idle for a moment) wakes sysmon, which then polls every 20 µs for a
// while. The sockets are non-blocking, so these calls cannot block: a read
// or write that would returns EAGAIN, on which the caller waits in the
// netpoller exactly as net.Conn's Read and Write do, honouring the
// connection's deadlines.
//
// Reads and writes may run at the same time, as on any net.Conn, but two
// Reads or two Writes may not: fasthttp and upstream calls never do that.
type fastWriteConn struct {
	*net.TCPConn
	raw syscall.RawConn

	// The state of the Read and Write in progress, and their callbacks,
	// which live here so that a call allocates nothing.
	rbuf     []byte
	rn       int
	rerr     error
	readFunc func(fd uintptr) bool

	wbuf      []byte
	wn        int
	werr      error
	writeFunc func(fd uintptr) bool

	// awaitFunc is writeThenAwaitRead's callback; awaiting says its
	// write is done.
	awaitFunc func(fd uintptr) bool
	awaiting  bool

	// lazy keeps the deadlines of a connection fcd serves (lazyDeadlines);
	// nil for one whose deadlines go straight to the runtime.
	lazy *lazyDeadlines

	// perIP counts a served connection against its client address ip
	// until closed; nil when it is not counted.
	perIP  *ipConns
	ip     netip.Addr
	closed atomic.Bool

	// A served connection's deferred response (deferResponse): sent by
	// the next Read, Write or Close. pmu guards pending and stash
	// against a Close from another goroutine (fasthttp's shutdown
	// closes idle connections).
	watcher   *clientWatcher // nil: responses are never deferred
	deferNext bool
	pmu       sync.Mutex
	pending   []byte
	stash     []byte // pending's buffer, reused
	// sendReadFunc is sendThenRead's callback; blind watches its wait.
	sendReadFunc func(fd uintptr) bool
	blind        clientWatch
	// woke is set when the client watcher woke a blind wait; strikes
	// counts the waits in a row it had to (a request lost to the wait);
	// ahead is set at maxStrikes: the client sends requests before it
	// has the answer to the last (HTTP pipelining), and responses are no
	// longer deferred on the connection.
	woke    atomic.Bool
	strikes int
	ahead   atomic.Bool
}

// fastWrite wraps c when it is a TCP connection; any other c is returned
// as it is, and so is every c under the race detector (fastwrite_race.go).
func fastWrite(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok || raceEnabled {
		return c
	}
	fc, err := newFastWriteConn(tc)
	if err != nil {
		return c
	}
	return fc
}

func newFastWriteConn(tc *net.TCPConn) (*fastWriteConn, error) {
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil, err
	}
	c := &fastWriteConn{TCPConn: tc, raw: raw}
	c.readFunc, c.writeFunc, c.awaitFunc, c.sendReadFunc = c.read, c.write, c.await, c.sendRead
	return c, nil
}

func (c *fastWriteConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if q := c.takePending(); q != nil {
		n, err, done := c.sendThenRead(q, p)
		if done {
			return n, err
		}
	}
	c.rbuf, c.rn, c.rerr = p, 0, nil
	err := c.raw.Read(c.readFunc)
	for err != nil && c.lazy != nil && c.lazy.rearm(c.TCPConn, readDeadline, err) {
		err = c.raw.Read(c.readFunc)
	}
	n, rerr := c.rn, c.rerr
	c.rbuf, c.rerr = nil, nil
	if err != nil {
		return n, err // net's *OpError: a deadline or a closed connection
	}
	if rerr != nil && rerr != io.EOF {
		rerr = &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: rerr}
	}
	return n, rerr
}

// read is the raw read of c.rbuf; false means wait until readable.
func (c *fastWriteConn) read(fd uintptr) bool {
	for {
		n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&c.rbuf[0])), uintptr(len(c.rbuf)))
		switch errno {
		case 0:
			c.rn = int(n)
			if n == 0 {
				c.rerr = io.EOF
			}
			return true
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			c.rerr = errno
			return true
		}
	}
}

func (c *fastWriteConn) Write(p []byte) (int, error) {
	if q := c.takePending(); q != nil {
		_, err := c.writeNow(q)
		c.giveBack(q)
		if err != nil {
			return 0, err
		}
	}
	if c.deferNext {
		c.deferNext = false
		if len(p) <= maxDeferred && !c.ahead.Load() {
			c.pmu.Lock()
			c.pending = append(c.stash[:0], p...)
			c.pmu.Unlock()
			return len(p), nil
		}
	}
	return c.writeNow(p)
}

func (c *fastWriteConn) writeNow(p []byte) (int, error) {
	c.wbuf, c.wn, c.werr = p, 0, nil
	err := c.raw.Write(c.writeFunc)
	for err != nil && c.lazy != nil && c.lazy.rearm(c.TCPConn, writeDeadline, err) {
		err = c.raw.Write(c.writeFunc)
	}
	n, werr := c.wn, c.werr
	c.wbuf, c.werr = nil, nil
	if err != nil {
		return n, err
	}
	if werr != nil {
		return n, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: werr}
	}
	return n, nil
}

// write is the raw write of what is left of c.wbuf; false means wait
// until writable.
func (c *fastWriteConn) write(fd uintptr) bool {
	for c.wn < len(c.wbuf) {
		n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&c.wbuf[c.wn])), uintptr(len(c.wbuf)-c.wn))
		switch errno {
		case 0:
			c.wn += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			c.werr = errno
			return true
		}
	}
	return true
}

// writeThenAwaitRead writes p and then waits until the connection has
// something to read, both inside one RawConn.Read. The read readiness is
// armed before the write, so an answer to what p asks for ends the wait
// however soon it comes; and the read that would only find nothing yet
// (EAGAIN), which a write followed by a Read makes on every exchange, is
// never made: a request and its response cost a write and a read.
//
// Only a connection whose peer sends nothing unasked may use it (an
// instance's, between responses): bytes or an EOF that arrived before the
// call would not end the wait. A peer that closed meanwhile answers the
// write with a reset, which does.
//
// It returns how much of p it wrote and the write's error. A write that
// cannot finish without waiting (a full send buffer) returns early, with
// n < len(p) and no error: the caller writes the rest as usual. A wait
// ended by a deadline or a close is no error here; the next Read reports
// it.
func (c *fastWriteConn) writeThenAwaitRead(p []byte) (int, error) {
	c.wbuf, c.wn, c.werr, c.awaiting = p, 0, nil, false
	c.raw.Read(c.awaitFunc)
	n, werr := c.wn, c.werr
	c.wbuf, c.werr = nil, nil
	if werr != nil {
		return n, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: werr}
	}
	return n, nil
}

// await writes c.wbuf on its first call and asks to wait for readability
// once it is written whole; its second call means the wait is over.
func (c *fastWriteConn) await(fd uintptr) bool {
	if c.awaiting {
		return true
	}
	c.awaiting = true
	if !c.write(fd) || c.werr != nil {
		return true // EAGAIN or an error: not waiting for an answer
	}
	return false
}

// Deferred responses.
//
// After a response, a served connection's next Read would find nothing
// yet (EAGAIN) and wait for the client's next request: a read system call
// per request that only says "not yet". It cannot simply wait without
// reading first: the runtime forgets, at the start of every Read, that
// the socket became readable before it, so a request that arrived in
// between would never wake the wait. A deferred response avoids both: its
// Write only keeps the bytes, and the next Read sends them and then waits,
// inside one RawConn.Read (as writeThenAwaitRead does on instance
// connections). A client that waits for each answer before it sends again
// can only send after the response left, so after the Read began: its
// request wakes the wait.
//
// A client that pipelines may have sent its next request before the wait
// began. The client watcher peeks once at each such wait (watch.go):
// finding bytes, it wakes the wait; after maxStrikes waits in a row that
// needed it, the connection defers no more. Such a client's first
// requests wait up to a watch interval or two.

// maxDeferred bounds a deferred response; a larger write goes out at once.
const maxDeferred = 16 << 10

// deferResponse makes the next Write on the connection c, when it is a
// served fastWriteConn, the last of a response to be sent by the Read
// that waits for the next request. The proxy asks for it once a
// response is whole in memory: fasthttp writes it in one Write after the
// handler returns.
func deferResponse(c net.Conn) {
	if fc, ok := c.(*fastWriteConn); ok && fc.watcher != nil {
		fc.deferNext = true
	}
}

// takePending returns the deferred response, if any, which the caller
// then owns and must send.
func (c *fastWriteConn) takePending() []byte {
	if c.watcher == nil {
		return nil
	}
	c.pmu.Lock()
	q := c.pending
	c.pending = nil
	c.pmu.Unlock()
	return q
}

// giveBack makes q, a sent deferred response, the buffer of the next.
func (c *fastWriteConn) giveBack(q []byte) {
	c.pmu.Lock()
	c.stash = q[:0]
	c.pmu.Unlock()
}

// sendThenRead sends the deferred response q, then waits for and reads
// the client's next bytes into p, in one RawConn.Read. done is false when
// it did not get as far as reading: the caller reads as usual.
func (c *fastWriteConn) sendThenRead(q, p []byte) (n int, err error, done bool) {
	defer c.giveBack(q)
	c.wbuf, c.wn, c.werr, c.awaiting = q, 0, nil, false
	c.rbuf, c.rn, c.rerr = p, 0, nil
	c.blind.startBlind(c.watcher, c)
	err = c.raw.Read(c.sendReadFunc)
	c.blind.stop()
	c.countStrike(err)
	wn, werr := c.wn, c.werr
	n, rerr := c.rn, c.rerr
	c.wbuf, c.werr, c.rbuf, c.rerr = nil, nil, nil, nil
	if werr != nil {
		return 0, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: werr}, true
	}
	if wn < len(q) {
		// The send buffer filled: the rest goes out as any write does.
		if _, err := c.writeNow(q[wn:]); err != nil {
			return 0, err, true
		}
		return 0, nil, false
	}
	if err != nil {
		// A deadline (the watcher's wake among them) or a close: the
		// usual Read retries, or reports it.
		return 0, nil, false
	}
	if rerr != nil && rerr != io.EOF {
		rerr = &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: rerr}
	}
	return n, rerr, true
}

// maxStrikes is how many waits in a row the client watcher must wake
// before a connection defers no more. One is not proof: the watcher may
// find a request that arrived after the wait began but whose wake-up the
// runtime had not delivered yet.
const maxStrikes = 2

// countStrike learns from how a blind wait ended (err, RawConn.Read's)
// whether the client watcher had to wake it.
func (c *fastWriteConn) countStrike(err error) {
	woke := c.woke.Swap(false)
	switch {
	case err == nil:
		c.strikes = 0
	case woke && errors.Is(err, os.ErrDeadlineExceeded):
		if c.strikes++; c.strikes >= maxStrikes {
			c.ahead.Store(true)
		}
	}
}

// sendRead writes c.wbuf on its first call and asks to wait; later calls
// read into c.rbuf.
func (c *fastWriteConn) sendRead(fd uintptr) bool {
	if !c.awaiting {
		c.awaiting = true
		if !c.write(fd) || c.werr != nil {
			return true // EAGAIN or an error: no wait
		}
		return false
	}
	return c.read(fd)
}

// readable reports whether the socket has bytes or an end to read,
// without taking the read lock a waiting Read holds or touching the
// runtime's readiness.
func (c *fastWriteConn) readable() bool {
	var ready bool
	c.raw.Control(func(fd uintptr) {
		var buf [1]byte
		_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ready = err != syscall.EAGAIN && err != syscall.EWOULDBLOCK
	})
	return ready
}

// wakeBlind ends a wait that may have begun after the client's bytes
// arrived.
func (c *fastWriteConn) wakeBlind() {
	c.woke.Store(true)
	c.lazy.wake(c.TCPConn)
}

// fastWriteListener hands out fastWriteConns with lazy deadlines, and
// caps the open connections of one client address.
//
// The cap is kept here, not by fasthttp's MaxConnsPerIP: that wraps each
// connection in a type of fasthttp's own, under which the client watch
// cannot reach the socket to see its client leave.
type fastWriteListener struct {
	net.Listener
	perIP   *ipConns       // nil: no cap
	watcher *clientWatcher // nil: no deferred responses
}

func (l fastWriteListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip, counted := l.perIP.take(c)
		if counted && !ip.IsValid() {
			rejectConn(c)
			continue
		}
		c = fastWrite(c)
		switch cc := c.(type) {
		case *fastWriteConn:
			cc.lazy = &lazyDeadlines{}
			cc.watcher = l.watcher
			if counted {
				cc.perIP, cc.ip = l.perIP, ip
			}
		case *net.TCPConn:
			if counted {
				c = &countedConn{TCPConn: cc, perIP: l.perIP, ip: ip}
			}
		}
		return c, nil
	}
}

// Close closes the connection and gives its client address's count back.
func (c *fastWriteConn) Close() error {
	if c.watcher != nil {
		c.pmu.Lock()
		q := c.pending
		c.pending, c.stash = nil, nil
		c.pmu.Unlock()
		if q != nil {
			// net's own Write: Close may come from another goroutine.
			c.TCPConn.Write(q)
		}
	}
	err := c.TCPConn.Close()
	if c.perIP != nil && !c.closed.Swap(true) {
		c.perIP.put(c.ip)
	}
	return err
}

// countedConn is a connection counted against its client address's cap
// that is not a fastWriteConn (under the race detector).
type countedConn struct {
	*net.TCPConn
	perIP  *ipConns
	ip     netip.Addr
	closed atomic.Bool
}

func (c *countedConn) Close() error {
	err := c.TCPConn.Close()
	if !c.closed.Swap(true) {
		c.perIP.put(c.ip)
	}
	return err
}

// ipConns counts the open connections of each client address.
type ipConns struct {
	max int
	mu  sync.Mutex
	n   map[netip.Addr]int
}

func newIPConns(max int) *ipConns {
	if max <= 0 {
		return nil
	}
	return &ipConns{max: max, n: map[netip.Addr]int{}}
}

// take counts c against its address: counted is false for a connection
// that is not counted (no cap, or no IP address); ip is the zero Addr
// when the address is at its cap.
func (p *ipConns) take(c net.Conn) (ip netip.Addr, counted bool) {
	if p == nil {
		return ip, false
	}
	ta, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return ip, false
	}
	ip = ta.AddrPort().Addr().Unmap()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[ip] >= p.max {
		return netip.Addr{}, true
	}
	p.n[ip]++
	return ip, true
}

func (p *ipConns) put(ip netip.Addr) {
	p.mu.Lock()
	if p.n[ip]--; p.n[ip] <= 0 {
		delete(p.n, ip)
	}
	p.mu.Unlock()
}

// tooManyConns answers a connection past its address's cap, as fasthttp's
// MaxConnsPerIP did.
var tooManyConns = "HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nServer: fcd\r\nContent-Type: text/plain\r\nContent-Length: " +
	strconv.Itoa(len(tooManyConnsMsg)) + "\r\n\r\n" + tooManyConnsMsg

const tooManyConnsMsg = "The number of connections from your ip exceeds the cap per client address"

// rejectConn answers c 429 and closes it. The answer fits any socket
// buffer; the deadline only guards against a write that still blocks.
func rejectConn(c net.Conn) {
	c.SetWriteDeadline(time.Now().Add(time.Second))
	io.WriteString(c, tooManyConns)
	c.Close()
}
