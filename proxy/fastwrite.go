package proxy

import (
	"io"
	"net"
	"syscall"
	"unsafe"
)

// fastWriteConn is a TCP connection whose writes do not tell the Go
// scheduler they are system calls.
//
// A write to a socket on this host runs the receiver's whole network stack
// inline (loopback and the instances' veth pairs deliver in the writer's
// softirq), which takes tens of microseconds. The runtime's sysmon takes
// the P away from a thread that sits in a system call that long, wakes
// another thread to run it, and puts the writer to sleep when its write
// returns: two futex wake-ups and a trip through the scheduler for every
// write, and a sysmon that never backs off (it polls every 20 µs while it
// keeps finding such Ps). The socket is non-blocking, so the write cannot
// block: it copies what fits and returns EAGAIN for the rest, on which the
// writer waits in the netpoller as net.Conn's Write would, honouring its
// deadlines. Reads keep the ordinary path; they return as soon as the
// bytes are copied.
type fastWriteConn struct {
	*net.TCPConn
	raw syscall.RawConn
}

// fastWrite wraps c when it is a TCP connection; any other c is returned
// as it is, and so is every c under the race detector (fastio_race.go).
func fastWrite(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok || raceEnabled {
		return c
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &fastWriteConn{TCPConn: tc, raw: raw}
}

func (c *fastWriteConn) Write(p []byte) (int, error) {
	var n int
	var werr error
	err := c.raw.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n))
			switch errno {
			case 0:
				n += int(m)
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false // wait until writable
			default:
				werr = errno
				return true
			}
		}
		return true
	})
	if err != nil {
		return n, err // net's *OpError, of the deadline or a closed conn
	}
	if werr != nil {
		return n, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: werr}
	}
	return n, nil
}

func (c *fastWriteConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var rerr error
	err := c.raw.Read(func(fd uintptr) bool {
		for {
			m, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			switch errno {
			case 0:
				n = int(m)
				if n == 0 {
					rerr = io.EOF
				}
				return true
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false // wait until readable
			default:
				rerr = errno
				return true
			}
		}
	})
	if err != nil {
		return n, err
	}
	if rerr != nil && rerr != io.EOF {
		rerr = &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: rerr}
	}
	return n, rerr
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
