package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// upstream keeps idle keep-alive connections to instances, by instance ID:
// an address may be reused by a later instance, an ID never is, and the
// scheduler names the instances it stops by ID (Server.InstanceStopping).
//
// fcd drives the connections itself, with fasthttp's request writer and
// response reader, rather than through fasthttp.Client: a call must be
// abortable when its client goes away (fasthttp's client cannot be
// cancelled), and an aborted connection must never return to the pool.
type upstream struct {
	dialTimeout time.Duration
	maxIdle     int           // per instance
	idleTimeout time.Duration // idle connections older than this are not reused
	// checkAfter is how long a connection may sit idle before its reuse
	// costs a liveness check (alive). Servers close idle keep-alive
	// connections after seconds (Node's 5 s is the shortest common
	// default), so a connection idle for less has not been closed by its
	// instance unless the instance died, which fails the request anyway;
	// under load connections idle for microseconds and reuse costs no
	// syscall.
	checkAfter time.Duration

	mu   sync.Mutex
	idle map[string][]*upConn
}

type upConn struct {
	net.Conn
	// fast is Conn when it is a fastWriteConn (not under -race).
	fast *fastWriteConn
	// await makes the next Write a request's last: it is written and
	// the answer awaited at once (fastWriteConn.writeThenAwaitRead).
	await bool
	id    string // the instance's
	br    *bufio.Reader
	bw    *bufio.Writer
	used  time.Time // when it last went idle
	// deadline is the one set on the connection, zero for none.
	deadline time.Time
	// werr is the last error writing to the connection: a request write
	// that failed without one failed on the request itself.
	werr error
	// noReuse: the exchange on the connection leaves it unfit for
	// another (the request was not written whole, the instance asked to
	// close, the body ends at the connection's end).
	noReuse bool
}

// deadlineSlack is how much later than asked a call's deadline may be, so
// that the calls on one busy connection, each a little later than the
// last, do not each move the runtime's timers: a function's timeout
// (whole seconds) fires up to this much late.
const deadlineSlack = 100 * time.Millisecond

// setDeadline makes the connection's deadline d, or up to deadlineSlack
// later.
func (c *upConn) setDeadline(d time.Time) {
	if c.deadline.Before(d) || c.deadline.After(d.Add(deadlineSlack)) {
		c.deadline = d.Add(deadlineSlack)
		c.SetDeadline(c.deadline)
	}
}

// Write writes to the connection, remembering its error.
func (c *upConn) Write(p []byte) (n int, err error) {
	if c.await && c.fast != nil {
		c.await = false
		n, err = c.fast.writeThenAwaitRead(p)
		if err == nil && n < len(p) {
			var m int
			m, err = c.Conn.Write(p[n:])
			n += m
		}
	} else {
		n, err = c.Conn.Write(p)
	}
	if err != nil {
		c.werr = err
	}
	return n, err
}

func newUpstream() *upstream {
	return &upstream{
		dialTimeout: 3 * time.Second,
		maxIdle:     256,
		idleTimeout: 30 * time.Second,
		checkAfter:  10 * time.Millisecond,
		idle:        map[string][]*upConn{},
	}
}

// addresser gives an instance's address (a Lease does), asked only when
// a connection is dialled: formatting it costs an allocation, and a warm
// request reuses a connection.
type addresser interface{ Addr() string }

// fixedAddr is an address known as a string.
type fixedAddr string

func (a fixedAddr) Addr() string { return string(a) }

// get returns an idle connection to instance id, or dials one at addr.
// reused says which.
func (u *upstream) get(id string, addr addresser, now time.Time) (c *upConn, reused bool, err error) {
	u.mu.Lock()
	conns := u.idle[id]
	for len(conns) > 0 {
		c = conns[len(conns)-1]
		conns = conns[:len(conns)-1]
		if idle := now.Sub(c.used); idle < u.idleTimeout && (idle < u.checkAfter || c.alive()) {
			u.idle[id] = conns
			u.mu.Unlock()
			return c, true, nil
		}
		c.Close()
	}
	delete(u.idle, id)
	u.mu.Unlock()
	nc, err := net.DialTimeout("tcp", addr.Addr(), u.dialTimeout)
	if err != nil {
		return nil, false, err
	}
	nc = fastWrite(nc)
	c = &upConn{Conn: nc, id: id, br: bufio.NewReaderSize(nc, 16<<10)}
	c.fast, _ = nc.(*fastWriteConn)
	c.bw = bufio.NewWriterSize(c, 16<<10)
	return c, false, nil
}

// alive reports whether an idle connection is still open: an instance that
// closed it while idle has left an EOF (or stray bytes) to read.
func (c *upConn) alive() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return true
	}
	// A read past the deadline would fail before it peeks.
	c.deadline = time.Time{}
	if c.SetDeadline(time.Time{}) != nil {
		return false
	}
	raw, err := sc.SyscallConn()
	return err == nil && !peerClosed(raw)
}

// put returns a connection whose last response was read whole. Its
// deadline stays as the call left it, which saves two timer updates per
// call: the next call sets its own, and alive, before it peeks, clears
// one that passed.
func (u *upstream) put(c *upConn, now time.Time) {
	c.used = now
	u.mu.Lock()
	if len(u.idle[c.id]) >= u.maxIdle {
		u.mu.Unlock()
		c.Close()
		return
	}
	u.idle[c.id] = append(u.idle[c.id], c)
	u.mu.Unlock()
}

// closeInstance closes every idle connection to instance id, which was
// evicted or is stopping.
func (u *upstream) closeInstance(id string) {
	u.mu.Lock()
	conns := u.idle[id]
	delete(u.idle, id)
	u.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// sweep closes idle connections past idleTimeout, a backstop for
// instances that went away without the proxy being told.
func (u *upstream) sweep(now time.Time) {
	var stale []*upConn
	u.mu.Lock()
	for id, conns := range u.idle {
		keep := conns[:0]
		for _, c := range conns {
			if now.Sub(c.used) >= u.idleTimeout {
				stale = append(stale, c)
			} else {
				keep = append(keep, c)
			}
		}
		if len(keep) == 0 {
			delete(u.idle, id)
		} else {
			u.idle[id] = keep
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

// errDial marks a failure to connect to an instance: it is unreachable,
// not slow, and is evicted.
type errDial struct{ err error }

func (e *errDial) Error() string { return "connect to instance: " + e.err.Error() }
func (e *errDial) Unwrap() error { return e.err }

// errRequest marks a client's request that cannot be written to an
// instance (fasthttp refuses to serialize it: no Host, a body where the
// method has none): the client's error, never the instance's.
type errRequest struct{ err error }

func (e *errRequest) Error() string { return "the request cannot be forwarded: " + e.err.Error() }
func (e *errRequest) Unwrap() error { return e.err }

// errBodyTooLarge is an HTTP trigger request body past MaxInvokeBody.
var errBodyTooLarge = fmt.Errorf("the request body exceeds the limit of %d bytes for a synchronous invocation", MaxInvokeBody)

// errClientBody marks a request whose client's body broke off (the client
// left or sent less than it announced): the instance is not at fault.
type errClientBody struct{ err error }

func (e *errClientBody) Error() string { return "reading the client's request body: " + e.err.Error() }
func (e *errClientBody) Unwrap() error { return e.err }

// clientBody reads the client's streamed request body for the upstream
// request, remembering a failure, or an end before the announced length,
// so it is not blamed on the instance.
type clientBody struct {
	r    io.Reader
	want int64 // the announced length, or -1 for chunked
	n    int64
	err  error
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	switch {
	case b.n > MaxInvokeBody:
		b.err = errBodyTooLarge
		return n, b.err
	case err == io.EOF && b.want >= 0 && b.n < b.want:
		b.err = fmt.Errorf("the client sent %d of the %d bytes it announced: %w", b.n, b.want, io.ErrUnexpectedEOF)
	case err != nil && err != io.EOF:
		b.err = err
	}
	return n, err
}

// call is one request to an instance. abort may be called from another
// goroutine at any time; it unblocks the call's I/O at once. Once the
// call's connection goes back to the pool, detach cuts it loose so a late
// abort cannot touch the connection's next user.
type call struct {
	mu      sync.Mutex
	conn    *upConn
	aborted bool
}

// setConn makes conn the call's connection with deadline, unless the call
// was aborted. Setting the deadline under the lock keeps an abort from
// being overwritten by it.
func (c *call) setConn(conn *upConn, deadline time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.aborted {
		return false
	}
	conn.setDeadline(deadline)
	c.conn = conn
	return true
}

func (c *call) abort() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.aborted = true
	if c.conn != nil {
		// A past deadline fails blocked reads and writes immediately; the
		// connection is then closed by the caller, never pooled, unless
		// its response was read whole already: then the next call on it
		// must see the deadline to replace (setDeadline).
		c.conn.deadline = time.Unix(1, 0)
		c.conn.SetDeadline(c.conn.deadline)
	}
}

// detach ends the call's hold on its connection before the connection is
// pooled.
func (c *call) detach() {
	c.mu.Lock()
	c.conn, c.aborted = nil, true
	c.mu.Unlock()
}

func (c *call) isAborted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.aborted
}

// roundTrip sends req to instance id at addr and reads the response head
// into resp, leaving its body as resp's body stream; only tests call it.
func (u *upstream) roundTrip(cl *call, id, addr string, req upstreamRequest, resp *fasthttp.Response, deadline time.Time) (*upConn, error) {
	conn, err := u.roundTripAt(cl, id, fixedAddr(addr), req, &resp.Header, time.Now(), deadline)
	if err != nil {
		return nil, err
	}
	if conn.noReuse {
		resp.SetConnectionClose()
	}
	resp.StreamBody = true
	return conn, resp.ReadBody(conn.br, 0)
}

// roundTripAt sends req to instance id and reads the response head into
// h, leaving the body unread on the connection; now is the caller's
// reading of the clock, and addr is asked for only to dial. The returned
// connection belongs to the caller, who must put it back only after
// reading the body whole, and only unless noReuse is set. Only a request
// that could not be written on a reused connection is retried, and only
// when its body is in memory: once a request is written the instance may
// have acted on it, and a function must not run twice.
func (u *upstream) roundTripAt(cl *call, id string, addr addresser, req upstreamRequest, h *fasthttp.ResponseHeader, now, deadline time.Time) (*upConn, error) {
	// fasthttp clears the body stream as it writes it: look first.
	streamed := requestStreamed(req)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			now = time.Now()
		}
		conn, reused, err := u.get(id, addr, now)
		if err != nil {
			return nil, &errDial{err}
		}
		if !cl.setConn(conn, deadline) {
			conn.Close()
			return nil, errAborted
		}
		err = req.Write(conn.bw)
		if err == nil {
			// The flush writes what is left of the request and waits
			// for the answer in one go.
			conn.await = true
			err = conn.bw.Flush()
			conn.await = false
		}
		written := err == nil
		switch {
		case !written && conn.werr == nil && !cl.isAborted():
			// fasthttp refused the request before it reached the
			// connection.
			conn.Close()
			return nil, &errRequest{err}
		case !written && reused && attempt == 0 && !streamed && !isTimeout(err):
			conn.Close()
			continue
		case written || !isTimeout(err):
			// An instance may answer before it reads the whole request,
			// and close, as a server refusing an upload does: its answer
			// is relayed. Only a connection that yields none failed.
			rerr := readHead(h, conn.br)
			if rerr == nil {
				conn.noReuse = !written
				return conn, nil
			}
			if written {
				err = rerr
			}
		}
		conn.Close()
		if cl.isAborted() {
			return nil, errAborted
		}
		return nil, err
	}
}

// maxInterim bounds the interim (1xx) responses skipped before a final one.
const maxInterim = 8

// readHead reads a final response's head into h, skipping interim (1xx)
// ones, as fasthttp's Response.Read does.
func readHead(h *fasthttp.ResponseHeader, br *bufio.Reader) error {
	for range maxInterim {
		if err := h.Read(br); err != nil {
			return err
		}
		if c := h.StatusCode(); c < 100 || c > 199 || c == fasthttp.StatusSwitchingProtocols {
			return nil
		}
	}
	return errors.New("too many interim responses")
}

// upstreamRequest is a request roundTrip writes: an outRequest, or a
// *fasthttp.Request.
type upstreamRequest interface {
	Write(w *bufio.Writer) error
}

// requestStreamed reports whether req's body is streamed, so it cannot be
// written again.
func requestStreamed(req upstreamRequest) bool {
	switch r := req.(type) {
	case *outRequest:
		return r.stream != nil
	case *fasthttp.Request:
		return r.BodyStream() != nil
	}
	return false
}

// isTimeout reports a deadline that passed. fasthttp's reader reports its
// own ErrTimeout instead of the net.Error.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, fasthttp.ErrTimeout) || (errors.As(err, &ne) && ne.Timeout())
}
