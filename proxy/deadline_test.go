package proxy

import (
	"io"
	"testing"
	"time"
)

// lazyPair is fastPair with the deadlines of a served connection.
func lazyPair(t *testing.T) (*fastWriteConn, io.ReadWriter) {
	t.Helper()
	fc, peer := fastPair(t)
	fc.lazy = &lazyDeadlines{}
	return fc, peer
}

var (
	past   = time.Unix(1, 0)
	future = time.Now().Add(time.Hour)
)

// TestLazyDeadlineLater: a deadline moved later than the armed one, which
// passed, does not fail a read or a write before it.
func TestLazyDeadlineLater(t *testing.T) {
	for _, later := range []struct {
		name string
		t    time.Time
	}{{"later", future}, {"none", time.Time{}}} {
		t.Run(later.name, func(t *testing.T) {
			fc, peer := lazyPair(t)
			fc.SetDeadline(past) // armed: earlier than none
			fc.SetDeadline(later.t)
			if fc.lazy.armed[readDeadline] != past || fc.lazy.armed[writeDeadline] != past {
				t.Fatalf("armed %v, want the past deadline still armed", fc.lazy.armed)
			}
			go peer.Write([]byte("x"))
			if n, err := fc.Read(make([]byte, 1)); n != 1 || err != nil {
				t.Fatalf("read: got %d, %v; want 1, nil", n, err)
			}
			if _, err := fc.Write([]byte("y")); err != nil {
				t.Fatalf("write: got %v, want nil", err)
			}
			if got := fc.lazy.armed[readDeadline]; !got.Equal(later.t) {
				t.Fatalf("armed read deadline %v after the read, want %v", got, later.t)
			}
		})
	}
}

// TestLazyDeadlineEarlier: a deadline earlier than the armed one is armed
// at once and fails what runs past it.
func TestLazyDeadlineEarlier(t *testing.T) {
	fc, _ := lazyPair(t)
	fc.SetDeadline(future)
	errc := make(chan error, 2)
	go func() {
		_, err := fc.Read(make([]byte, 1)) // the peer sends nothing
		errc <- err
	}()
	go func() {
		_, err := fc.Write(make([]byte, 64<<20)) // nor reads
		errc <- err
	}()
	fc.SetDeadline(past)
	for range 2 {
		if err := <-errc; !isTimeout(err) {
			t.Fatalf("got %v, want a timeout", err)
		}
	}
}

// TestLazyDeadlineWatch: the client watch sees a client leave past an
// armed deadline that a later one replaced.
func TestLazyDeadlineWatch(t *testing.T) {
	fc, peer := lazyPair(t)
	cw := &clientWatch{conn: fc.raw}
	fc.SetReadDeadline(past)
	fc.SetReadDeadline(future)
	if cw.peerClosed() {
		t.Fatal("a connected client reported gone")
	}
	peer.(io.Closer).Close()
	if !cw.peerClosed() {
		t.Fatal("a client that closed its connection was not seen leave")
	}
}
