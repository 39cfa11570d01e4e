package proxy

import (
	"io"
	"net"
	"syscall"
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
	c.readFunc, c.writeFunc = c.read, c.write
	return c, nil
}

func (c *fastWriteConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rbuf, c.rn, c.rerr = p, 0, nil
	err := c.raw.Read(c.readFunc)
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
	c.wbuf, c.wn, c.werr = p, 0, nil
	err := c.raw.Write(c.writeFunc)
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

// fastWriteListener hands out fastWriteConns.
type fastWriteListener struct{ net.Listener }

func (l fastWriteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return fastWrite(c), nil
}
