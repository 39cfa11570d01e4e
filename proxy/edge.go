package proxy

import (
	"net/http"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// Limits bounds what one client can make the frontend hold: connections,
// header bytes, time spent reading its request and writing its response,
// and (with Server.bodies) buffered bodies. The zero value of each field
// is its default.
type Limits struct {
	// HeaderTimeout bounds reading a request's line and headers, from
	// the first byte of a new connection or of a request after a
	// keep-alive wait: a client trickling headers (slowloris) is cut off.
	// Zero means 10 s.
	HeaderTimeout time.Duration
	// BodyTimeout bounds reading a request's body once its headers are
	// in. Zero means 2 minutes.
	BodyTimeout time.Duration
	// KeepAliveTimeout closes a keep-alive connection idle this long.
	// Zero means 60 s.
	KeepAliveTimeout time.Duration
	// WriteTimeout bounds writing a response the proxy holds whole (API
	// answers, errors, function responses up to 64 KiB). A response
	// streamed from an instance is bounded by the function's timeout
	// instead: its instance slot is held while it is written. Zero means
	// 60 s.
	WriteTimeout time.Duration
	// MaxConnsPerIP caps the open connections of one client address;
	// past it a connection is answered 429 and closed. Zero means 1024;
	// negative, no cap.
	MaxConnsPerIP int
	// MaxHeaderBytes bounds a request's line and headers together. Zero
	// means 16 KiB, haproxy's default buffer: every connection holds a
	// read buffer of this size (fasthttp's ReadBufferSize), so 64 KiB
	// would cost 64 MB per thousand connections.
	MaxHeaderBytes int
	// BodyBudget bounds the bytes of signed request bodies (InvokeFunction
	// events, control API bodies, signed HTTP trigger requests) buffered
	// at once across all requests. Zero means DefaultBodyBudget.
	BodyBudget int64
}

// Defaults of Limits.
const (
	DefaultHeaderTimeout    = 10 * time.Second
	DefaultBodyTimeout      = 2 * time.Minute
	DefaultKeepAliveTimeout = 60 * time.Second
	DefaultWriteTimeout     = 60 * time.Second
	DefaultMaxConnsPerIP    = 1024
	DefaultMaxHeaderBytes   = 16 << 10
)

func (l Limits) withDefaults() Limits {
	set := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	set(&l.HeaderTimeout, DefaultHeaderTimeout)
	set(&l.BodyTimeout, DefaultBodyTimeout)
	set(&l.KeepAliveTimeout, DefaultKeepAliveTimeout)
	set(&l.WriteTimeout, DefaultWriteTimeout)
	if l.MaxConnsPerIP == 0 {
		l.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.BodyBudget == 0 {
		l.BodyBudget = DefaultBodyBudget
	}
	return l
}

func (s *Server) newFastHTTP() *fasthttp.Server {
	l := s.opts.Limits
	bodyConf := fasthttp.RequestConfig{ReadTimeout: l.BodyTimeout}
	return &fasthttp.Server{
		Handler:              s.handle,
		Name:                 "fcd",
		StreamRequestBody:    true,
		NoDefaultContentType: true,
		// ReadTimeout is the header timeout: fasthttp arms it for the
		// first byte of a connection and restarts it at the first byte
		// of each later request; HeaderReceived then gives the body its
		// own.
		ReadTimeout:    l.HeaderTimeout,
		HeaderReceived: func(*fasthttp.RequestHeader) fasthttp.RequestConfig { return bodyConf },
		IdleTimeout:    l.KeepAliveTimeout,
		WriteTimeout:   l.WriteTimeout,
		// MaxConnsPerIP is capped by the listener (fastWriteListener).
		ReadBufferSize: l.MaxHeaderBytes,
		// fasthttp would otherwise read a multipart body whole (into
		// memory and temporary files) before any handler, and so before
		// any signature check; fcd forwards bodies as they are.
		DisablePreParseMultipartForm: true,
		// Only invoke asks for the request's time (RequestCtx.Time), once
		// per invocation: other requests read no clock for it.
		LazyRequestTime: true,
		Logger:          fasthttpLogger{s.log},
	}
}

// triggerRequestError refuses an HTTP trigger request that cannot be
// forwarded, before an instance is leased for it: the fault is the
// client's, never the instance's.
func triggerRequestError(ctx *fasthttp.RequestCtx) *apiError {
	if len(ctx.Host()) == 0 {
		return newError(http.StatusBadRequest, CodeInvalidArgument, "the request has no Host header: an HTTP trigger request must name a host")
	}
	if n := ctx.Request.Header.ContentLength(); n > MaxInvokeBody {
		ctx.SetConnectionClose()
		return newError(http.StatusRequestEntityTooLarge, CodeEntityTooLarge, "request body of "+strconv.Itoa(n)+" bytes exceeds the limit of "+strconv.Itoa(MaxInvokeBody)+" bytes for a synchronous invocation")
	}
	return nil
}

// serveMetrics serves /metrics, signed when Options.SignedMetrics is set.
func (s *Server) serveMetrics(ctx *fasthttp.RequestCtx, rid string) {
	if s.opts.SignedMetrics {
		if _, aerr := s.readSigned(ctx, s.opts.MaxControlBody); aerr != nil {
			s.fail(ctx, rid, aerr)
			return
		}
	}
	s.metricsH(ctx)
}
