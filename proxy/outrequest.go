package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/valyala/fasthttp"

	"github.com/fcd-dev/fcd/api"
)

// outRequest is a request to an instance, written straight into the
// connection's buffer: the request line, for an HTTP trigger the client's
// own headers as fasthttp parsed them (less the connection-scoped ones,
// the body's framing and any x-fc-* header the client sent), fcd's
// headers, then the body with fcd's own framing. Nothing is copied into a
// second fasthttp.Request and serialized again, which on the warm path
// costs more than the rest of the request head's handling together.
//
// Write may be called again to retry a request whose body is in memory.
type outRequest struct {
	method, uri, proto []byte
	// client holds the headers an HTTP trigger forwards, Host among
	// them; nil for InvokeFunction, whose head is fcd's alone.
	client *fasthttp.RequestHeader
	// host and contentType are InvokeFunction's.
	host, contentType string

	// fc is the function's constant x-fc-* headers (cachedFunction.fcHead).
	fc                          []byte
	rid, qualifier, controlPath string
	// creds: the request carries the role's temporary credentials.
	creds                   bool
	keyID, keySecret, token string

	// body is the body in memory, unless stream is set: a streamed
	// client body of size bytes, -1 for unknown (sent chunked).
	body   []byte
	stream io.Reader
	size   int
	// head: the request is a HEAD, whose response has no body.
	head bool
}

// errNoHost is an HTTP trigger request without a Host header (an HTTP/1.0
// client's), which an instance need not accept.
var errNoHost = errors.New("the request has no Host header")

// Write writes the request to w, leaving the flush to the caller. An
// error before anything reaches w is the request's own (roundTrip
// answers it 400).
func (r *outRequest) Write(w *bufio.Writer) error {
	b := w.AvailableBuffer()
	b = append(b, r.method...)
	b = append(b, ' ')
	b = append(b, r.uri...)
	b = append(b, ' ')
	b = append(b, r.proto...)
	b = append(b, "\r\n"...)
	hasType := false
	if r.client != nil {
		var ok bool
		if b, hasType, ok = appendClientHeaders(b, r.client); !ok {
			return errNoHost
		}
	} else {
		b = appendHeader(b, "Host", r.host)
		b = appendHeader(b, "Content-Type", r.contentType)
		hasType = r.contentType != ""
	}
	b = append(b, r.fc...)
	b = appendHeader(b, "x-fc-request-id", r.rid)
	b = appendHeader(b, "x-fc-qualifier", r.qualifier)
	b = appendHeader(b, headerControlPath, r.controlPath)
	if r.creds {
		b = appendHeader(b, "x-fc-access-key-id", r.keyID)
		b = appendHeader(b, "x-fc-access-key-secret", r.keySecret)
		b = appendHeader(b, "x-fc-security-token", r.token)
	}
	b = r.appendFraming(b, hasType)
	b = append(b, "\r\n"...)
	if _, err := w.Write(b); err != nil {
		return err
	}
	switch {
	case r.stream == nil:
		_, err := w.Write(r.body)
		return err
	case r.size >= 0:
		return copyFixed(w, r.stream, r.size)
	default:
		return copyChunked(w, r.stream)
	}
}

// appendFraming appends the body's Content-Length or Transfer-Encoding,
// and, as fasthttp's writer does, a default Content-Type for a body that
// has none.
func (r *outRequest) appendFraming(b []byte, hasType bool) []byte {
	size := r.size
	if r.stream == nil {
		size = len(r.body)
		// A GET or HEAD without a body has no framing at all.
		if size == 0 && (string(r.method) == "GET" || string(r.method) == "HEAD") {
			return b
		}
	}
	if size > 0 && !hasType {
		b = appendHeader(b, "Content-Type", "application/octet-stream")
	}
	if size < 0 {
		return append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(size), 10)
	return append(b, "\r\n"...)
}

func appendHeader(b []byte, k, v string) []byte {
	b = append(b, k...)
	b = append(b, ": "...)
	b = append(b, v...)
	return append(b, "\r\n"...)
}

// appendClientHeaders appends the client's headers an instance gets:
// not the connection-scoped ones (RFC 9110 7.6.1, and those Connection
// names), not the body's framing, which the request is sent with anew,
// and no x-fc-* header: those come from fcd alone, so a client cannot
// pose as the platform, e.g. with role credentials of its own. It reports
// whether the client named a Content-Type, and false for ok when the
// request has no Host.
func appendClientHeaders(b []byte, h *fasthttp.RequestHeader) (_ []byte, hasType, ok bool) {
	conn := h.Peek("Connection")
	for k, v := range h.All() {
		switch {
		case len(k) == len("Host") && bytes.EqualFold(k, []byte("Host")):
			ok = len(v) > 0
		case len(k) == len("Content-Length") && bytes.EqualFold(k, []byte("Content-Length")):
			continue
		case len(k) == len("Content-Type") && bytes.EqualFold(k, []byte("Content-Type")):
			hasType = true
		case isHopHeader(k) || isFCHeader(k) || listsToken(conn, k):
			continue
		}
		b = append(b, k...)
		b = append(b, ": "...)
		b = append(b, v...)
		b = append(b, "\r\n"...)
	}
	return b, hasType, ok
}

// listsToken reports whether the comma-separated list names tok.
func listsToken(list, tok []byte) bool {
	for len(list) > 0 {
		var name []byte
		name, list, _ = bytes.Cut(list, []byte(","))
		if bytes.EqualFold(bytes.TrimSpace(name), tok) {
			return true
		}
	}
	return false
}

// copyFixed copies the size bytes of a streamed body into w's buffer,
// straight from the stream, flushing as the buffer fills.
func copyFixed(w *bufio.Writer, r io.Reader, size int) error {
	for size > 0 {
		if w.Available() == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
		p := w.AvailableBuffer()
		p = p[:min(cap(p), size)]
		n, err := r.Read(p)
		w.Write(p[:n]) // into its own free space: never fails or flushes
		size -= n
		switch {
		case err == io.EOF && size > 0:
			return io.ErrUnexpectedEOF
		case err == io.EOF:
			return nil
		case err != nil:
			return err
		}
	}
	return nil
}

// chunkBufs holds copyChunked's read buffers.
var chunkBufs = sync.Pool{New: func() any { return new([8 << 10]byte) }}

// copyChunked copies a streamed body of unknown length as chunks, then
// the last, empty chunk.
func copyChunked(w *bufio.Writer, r io.Reader) error {
	buf := chunkBufs.Get().(*[8 << 10]byte)
	defer chunkBufs.Put(buf)
	for {
		n, err := r.Read(buf[:])
		if n > 0 {
			head := strconv.AppendInt(w.AvailableBuffer(), int64(n), 16)
			head = append(head, "\r\n"...)
			w.Write(head)
			w.Write(buf[:n])
			if _, werr := w.WriteString("\r\n"); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			_, err = w.WriteString("0\r\n\r\n")
			return err
		}
		if err != nil {
			return err
		}
	}
}

// fcHead returns the function's x-fc-* headers that are the same on
// every request, built on first use: this configuration's, and fcd's
// region and account.
func (cf *cachedFunction) fcHead(s *Server) []byte {
	if p := cf.head.Load(); p != nil {
		return *p
	}
	fn := cf.fn
	version := fn.VersionID
	if version == "" {
		version = api.QualifierLatest
	}
	var b []byte
	b = appendHeader(b, "x-fc-function-name", headerValue(fn.FunctionName))
	b = appendHeader(b, "x-fc-function-memory", cf.memory)
	b = appendHeader(b, "x-fc-function-handler", headerValue(fn.Handler))
	b = appendHeader(b, "x-fc-region", headerValue(s.opts.Region))
	b = appendHeader(b, "x-fc-account-id", headerValue(s.opts.AccountID))
	b = appendHeader(b, "x-fc-version-id", headerValue(version))
	cf.head.Store(&b)
	return b
}

// headHolder is cachedFunction's built header block.
type headHolder = atomic.Pointer[[]byte]

// headerValue makes v safe as a header value: a line break would end the
// header, so control characters become spaces.
func headerValue(v string) string {
	if !needsCleaning(v) {
		return v
	}
	b := []byte(v)
	for i, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			b[i] = ' '
		}
	}
	return string(b)
}

func needsCleaning(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return true
		}
	}
	return false
}

func isFCHeader(k []byte) bool { return len(k) > 5 && bytes.EqualFold(k[:5], []byte("x-fc-")) }
