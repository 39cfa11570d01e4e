package gzindex

import "io"

// stream is an io.Reader of the uncompressed bytes of a gzip stream, decoded
// chunk by chunk into a buffer that keeps the 32 KiB window behind the
// reader. Memory is fixed by the chunk size, whatever the stream's length.
type stream struct {
	d     inflater
	rd    int // next byte of d.out to hand out
	chunk int
	err   error

	// beforeSlide, when set, runs before history behind the reader is
	// dropped, so that windows still needed can be saved.
	beforeSlide func()
}

func newStream(r io.Reader, inSize, chunk int, record bool) *stream {
	s := &stream{chunk: chunk}
	s.d.record = record
	s.d.resetStream(r, make([]byte, 0, inSize), make([]byte, windowSize+chunk+maxMatch))
	return s
}

// consumed is the absolute uncompressed offset of the next byte Read returns.
func (s *stream) consumed() int64 { return s.d.outBase + int64(s.rd) }

func (s *stream) Read(p []byte) (int, error) {
	if s.rd == s.d.op {
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, s.d.out[s.rd:s.d.op])
	s.rd += n
	return n, nil
}

// fill decodes the next chunk once the reader has taken every byte; it
// returns io.EOF at the end of the stream.
func (s *stream) fill() error {
	if s.err != nil {
		return s.err
	}
	if s.d.st == stDone {
		s.err = io.EOF
		return io.EOF
	}
	if s.d.op+s.chunk+maxMatch > len(s.d.out) {
		if s.beforeSlide != nil {
			s.beforeSlide()
		}
		s.d.slide(windowSize)
		s.rd = s.d.op
	}
	if err := s.d.decode(s.d.op + s.chunk); err != nil {
		s.err = err
	}
	if s.rd == s.d.op {
		if s.err == nil && s.d.st == stDone {
			s.err = io.EOF
		}
		if s.err != nil {
			return s.err
		}
	}
	return nil
}
