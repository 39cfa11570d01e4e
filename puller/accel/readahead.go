package accel

import (
	"io"
	"sync"
)

// readAhead reads r in its own goroutine, up to chunks buffers of size
// bytes ahead of the consumer, so that fetching a blob (network reads and
// go-containerregistry's digest check) runs on another core than decoding
// it. Close stops the goroutine once its current read of r returns: close
// r after it to unblock that read.
func readAhead(r io.Reader, chunks, size int) io.ReadCloser {
	ra := &aheadReader{
		free: make(chan []byte, chunks),
		full: make(chan chunk, chunks),
		done: make(chan struct{}),
	}
	for range chunks {
		ra.free <- make([]byte, size)
	}
	go ra.fill(r)
	return ra
}

type chunk struct {
	b   []byte
	err error
}

type aheadReader struct {
	free chan []byte
	full chan chunk
	done chan struct{}
	once sync.Once

	cur  []byte // unread part of buf
	buf  []byte // the buffer cur is in, returned to free when read
	err  error
	next int
}

func (a *aheadReader) fill(r io.Reader) {
	for {
		var buf []byte
		select {
		case buf = <-a.free:
		case <-a.done:
			return
		}
		n, err := io.ReadFull(r, buf)
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		select {
		case a.full <- chunk{buf[:n], err}:
		case <-a.done:
			return
		}
		if err != nil {
			return
		}
	}
}

func (a *aheadReader) Read(p []byte) (int, error) {
	for len(a.cur) == 0 {
		if a.buf != nil {
			a.free <- a.buf[:cap(a.buf)]
			a.buf = nil
		}
		if a.err != nil {
			return 0, a.err
		}
		c := <-a.full
		a.cur, a.buf, a.err = c.b, c.b, c.err
	}
	n := copy(p, a.cur)
	a.cur = a.cur[n:]
	return n, nil
}

func (a *aheadReader) Close() error {
	a.once.Do(func() { close(a.done) })
	return nil
}
