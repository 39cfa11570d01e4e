package proxy

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// lazyDeadlines keeps the deadlines of a connection fcd serves so that
// moving them later costs no runtime timer update.
//
// fasthttp sets four deadlines on a client's connection per request (the
// keep-alive wait, the header timeout, the body timeout, the write
// timeout), each later than one set a request before. Every one of them
// updates a runtime timer under the poller's locks. Here a deadline that
// is later than the one armed is only recorded: the armed one stays, and
// when it fires while the recorded one is still ahead, the read or write
// it stopped arms that one and carries on. On a busy connection the
// runtime's timer then moves once per header timeout (10 s) instead of
// four times per request. A deadline earlier than the armed one is armed
// at once, so none fires late: a request that reads or writes past its
// deadline fails as it would with the deadline armed directly.
type lazyDeadlines struct {
	mu    sync.Mutex
	want  [2]time.Time // what the connection's user set, zero for none
	armed [2]time.Time // what the runtime's timers hold
}

const (
	readDeadline  = 0
	writeDeadline = 1
)

// set records deadline t of kind, arming it when it is earlier than the
// one armed (or none is).
func (d *lazyDeadlines) set(tc *net.TCPConn, kind int, t time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.want[kind] = t
	if t.IsZero() || (!d.armed[kind].IsZero() && !t.Before(d.armed[kind])) {
		return nil
	}
	return d.arm(tc, kind, t)
}

func (d *lazyDeadlines) arm(tc *net.TCPConn, kind int, t time.Time) error {
	d.armed[kind] = t
	if kind == readDeadline {
		return tc.SetReadDeadline(t)
	}
	return tc.SetWriteDeadline(t)
}

// rearm is asked after a read or write of kind failed with err: when err
// is an armed deadline that passed while the one the user set is still
// ahead (or none is set), it arms that one and reports that the call may
// be retried.
func (d *lazyDeadlines) rearm(tc *net.TCPConn, kind int, err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	want := d.want[kind]
	if !want.IsZero() && !time.Now().Before(want) {
		return false
	}
	return d.arm(tc, kind, want) == nil
}

// wake makes a waiting read fail at once with a passed deadline, which
// rearm then replaces with the one set: the read is retried.
func (d *lazyDeadlines) wake(tc *net.TCPConn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.arm(tc, readDeadline, time.Unix(1, 0))
}

func (c *fastWriteConn) SetDeadline(t time.Time) error {
	if c.lazy == nil {
		return c.TCPConn.SetDeadline(t)
	}
	if err := c.lazy.set(c.TCPConn, readDeadline, t); err != nil {
		return err
	}
	return c.lazy.set(c.TCPConn, writeDeadline, t)
}

func (c *fastWriteConn) SetReadDeadline(t time.Time) error {
	if c.lazy == nil {
		return c.TCPConn.SetReadDeadline(t)
	}
	return c.lazy.set(c.TCPConn, readDeadline, t)
}

func (c *fastWriteConn) SetWriteDeadline(t time.Time) error {
	if c.lazy == nil {
		return c.TCPConn.SetWriteDeadline(t)
	}
	return c.lazy.set(c.TCPConn, writeDeadline, t)
}
