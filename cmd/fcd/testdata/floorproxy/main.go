// Command floorproxy is the floor of a reverse proxy written in Go: one
// goroutine per client connection, one keep-alive connection to the
// upstream each, every message relayed with one read and one write and no
// other work (no request id, headers, log, metering, limits or timeouts).
// BenchmarkProxies runs it beside haproxy, nginx and fcd, so that its
// table shows what the runtime and the kernel cost a Go proxy before it
// does anything a function host must.
//
// It understands only what the benchmark sends and the echo function
// answers: HTTP/1.1 messages with a Content-Length, or with no body. Any
// other message closes both connections.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"io"
	"log"
	"net"
	"strconv"
	"syscall"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	upstream := flag.String("upstream", "", "host:port to relay to")
	flag.Parse()
	if *upstream == "" {
		log.Fatal("floorproxy: -upstream is required")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go relay(c, *upstream)
	}
}

// relay serves one client connection until either side closes it or
// sends what the proxy does not understand.
func relay(c net.Conn, upstream string) {
	defer c.Close()
	u, err := net.Dial("tcp", upstream)
	if err != nil {
		log.Printf("floorproxy: %v", err)
		return
	}
	defer u.Close()
	cr, ur := bufio.NewReaderSize(c, 16<<10), bufio.NewReaderSize(u, 16<<10)
	var req, resp []byte
	for {
		if req, err = readMessage(cr, req); err != nil {
			logUnexpected(err)
			return
		}
		if _, err = u.Write(req); err != nil {
			logUnexpected(err)
			return
		}
		if resp, err = readMessage(ur, resp); err != nil {
			logUnexpected(err)
			return
		}
		if _, err = c.Write(resp); err != nil {
			logUnexpected(err)
			return
		}
	}
}

var errUnsupported = errors.New("message without a Content-Length body")

// readMessage reads one message, head and body, into buf.
func readMessage(r *bufio.Reader, buf []byte) ([]byte, error) {
	buf = buf[:0]
	length := 0
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		buf = append(buf, line...)
		if len(line) <= 2 { // the blank line that ends the head
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue // the start line
		}
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(bytes.TrimSpace(value))); err != nil || length < 0 {
				return nil, errUnsupported
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return nil, errUnsupported
		}
	}
	head := len(buf)
	buf = append(buf, make([]byte, length)...)
	_, err := io.ReadFull(r, buf[head:])
	return buf, err
}

func logUnexpected(err error) {
	// The benchmark's load generator ends its runs by closing, or
	// resetting, its connections.
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, syscall.ECONNRESET) {
		log.Printf("floorproxy: %v", err)
	}
}
