package proxy

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// upstream keeps idle keep-alive connections to instances, by address.
//
// fcd drives the connections itself, with fasthttp's request writer and
// response reader, rather than through fasthttp.Client: a call must be
// abortable when its client goes away (fasthttp's client cannot be
// cancelled), and an aborted connection must never return to the pool.
type upstream struct {
	dialTimeout time.Duration
	maxIdle     int           // per address
	idleTimeout time.Duration // idle connections older than this are not reused

	mu   sync.Mutex
	idle map[string][]*upConn
}

type upConn struct {
	net.Conn
	addr string
	br   *bufio.Reader
	bw   *bufio.Writer
	used time.Time // when it last went idle
}

func newUpstream() *upstream {
	return &upstream{
		dialTimeout: 3 * time.Second,
		maxIdle:     256,
		idleTimeout: 30 * time.Second,
		idle:        map[string][]*upConn{},
	}
}

// get returns an idle connection to addr, or dials one. reused says which.
func (u *upstream) get(addr string, now time.Time) (c *upConn, reused bool, err error) {
	u.mu.Lock()
	conns := u.idle[addr]
	for len(conns) > 0 {
		c = conns[len(conns)-1]
		conns = conns[:len(conns)-1]
		if now.Sub(c.used) < u.idleTimeout {
			u.idle[addr] = conns
			u.mu.Unlock()
			return c, true, nil
		}
		c.Close()
	}
	delete(u.idle, addr)
	u.mu.Unlock()
	nc, err := net.DialTimeout("tcp", addr, u.dialTimeout)
	if err != nil {
		return nil, false, err
	}
	return &upConn{Conn: nc, addr: addr, br: bufio.NewReaderSize(nc, 16<<10), bw: bufio.NewWriterSize(nc, 16<<10)}, false, nil
}

// put returns a connection whose last response was read whole.
func (u *upstream) put(c *upConn, now time.Time) {
	if c.SetDeadline(time.Time{}) != nil {
		c.Close()
		return
	}
	c.used = now
	u.mu.Lock()
	if len(u.idle[c.addr]) >= u.maxIdle {
		u.mu.Unlock()
		c.Close()
		return
	}
	u.idle[c.addr] = append(u.idle[c.addr], c)
	u.mu.Unlock()
}

// closeAddr closes every idle connection to addr, for an evicted instance.
func (u *upstream) closeAddr(addr string) {
	u.mu.Lock()
	conns := u.idle[addr]
	delete(u.idle, addr)
	u.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// sweep closes idle connections past idleTimeout, so addresses of instances
// that are gone do not keep sockets open.
func (u *upstream) sweep(now time.Time) {
	var stale []*upConn
	u.mu.Lock()
	for addr, conns := range u.idle {
		keep := conns[:0]
		for _, c := range conns {
			if now.Sub(c.used) >= u.idleTimeout {
				stale = append(stale, c)
			} else {
				keep = append(keep, c)
			}
		}
		if len(keep) == 0 {
			delete(u.idle, addr)
		} else {
			u.idle[addr] = keep
		}
	}
	u.mu.Unlock()
	for _, c := range stale {
		c.Close()
	}
}

// closeAll closes every idle connection, at shutdown.
func (u *upstream) closeAll() {
	u.mu.Lock()
	all := u.idle
	u.idle = map[string][]*upConn{}
	u.mu.Unlock()
	for _, conns := range all {
		for _, c := range conns {
			c.Close()
		}
	}
}

// errAborted is the cause of a call aborted because its client went away.
var errAborted = errors.New("client closed request")

// call is one request to an instance. abort may be called from another
// goroutine at any time; it unblocks the call's I/O at once.
type call struct {
	mu      sync.Mutex
	conn    *upConn
	aborted bool
}

func (c *call) setConn(conn *upConn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.aborted {
		return false
	}
	c.conn = conn
	return true
}

func (c *call) abort() {
	c.mu.Lock()
	c.aborted = true
	conn := c.conn
	c.mu.Unlock()
	if conn != nil {
		// A past deadline fails blocked reads and writes immediately; the
		// connection is then closed by the caller, never pooled.
		conn.SetDeadline(time.Unix(1, 0))
	}
}

func (c *call) isAborted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.aborted
}

// roundTrip sends req to addr and reads the response head, leaving a
// streamed body unread in resp. The returned connection belongs to the
// caller, who must put it back only after reading the body whole. A request
// whose body is in memory is retried once on a fresh connection when a
// reused one turns out to be closed by the instance.
func (u *upstream) roundTrip(cl *call, addr string, req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) (*upConn, error) {
	for attempt := 0; ; attempt++ {
		conn, reused, err := u.get(addr, time.Now())
		if err != nil {
			return nil, err
		}
		if !cl.setConn(conn) {
			conn.Close()
			return nil, errAborted
		}
		conn.SetDeadline(deadline)
		err = req.Write(conn.bw)
		if err == nil {
			err = conn.bw.Flush()
		}
		if err == nil {
			resp.StreamBody = true
			err = resp.Read(conn.br)
		}
		if err == nil {
			return conn, nil
		}
		conn.Close()
		if cl.isAborted() {
			return nil, errAborted
		}
		retriable := reused && attempt == 0 && req.BodyStream() == nil && !isTimeout(err)
		if !retriable {
			return nil, err
		}
	}
}

// isTimeout reports a deadline that passed. fasthttp's reader reports its
// own ErrTimeout instead of the net.Error.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, fasthttp.ErrTimeout) || (errors.As(err, &ne) && ne.Timeout())
}
