package proxy

import (
	"context"
	"errors"
	"net"
	"testing"
)

// goner records the causes a watch reports.
type goner chan error

func (g goner) clientGone(cause error) { g <- cause }

// TestClientWatcher: one watcher watches several requests; the one whose
// client leaves is told, the others stay watched until they stop, and
// fcd's hard stop reaches every request left.
func TestClientWatcher(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pair := func() (server, client net.Conn) {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(); s.Close() })
		return s, c
	}
	var w clientWatcher
	hard, stop := context.WithCancelCause(context.Background())
	defer stop(nil)

	leaving, leavingClient := pair()
	staying, _ := pair()
	var a, b, c clientWatch
	ga, gb, gc := make(goner, 1), make(goner, 1), make(goner, 1)
	a.start(&w, leaving, hard, ga)
	b.start(&w, staying, hard, gb)
	c.start(&w, nil, hard, gc) // an async attempt: no client
	leavingClient.Close()
	if err := <-ga; !errors.Is(err, errAborted) {
		t.Fatalf("client left: got %v, want errAborted", err)
	}

	b.stop()
	fcdStops := errors.New("fcd stops")
	stop(fcdStops)
	if err := <-gc; !errors.Is(err, fcdStops) {
		t.Fatalf("hard stop: got %v, want fcd's cause", err)
	}
	w.mu.Lock()
	empty := w.head.next == &w.head
	w.mu.Unlock()
	if !empty {
		t.Fatal("watches left in the list after they ended")
	}
	select {
	case err := <-gb:
		t.Fatalf("a stopped watch reported %v", err)
	default:
	}
}
