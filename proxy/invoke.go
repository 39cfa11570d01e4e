package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/billing"
)

// Scheduler is what the proxy needs of the scheduler: a slot on an instance
// of the function, warm or freshly started, for one request.
type Scheduler interface {
	// Acquire returns a lease on an instance of fn, waiting for a cold start
	// or a free slot while ctx allows. Errors carry an errdefs category
	// or are start failures; acquireError lists how each is answered.
	Acquire(ctx context.Context, fn *api.Function) (Lease, error)
}

// Lease is one request's slot on an instance.
type Lease interface {
	// Addr is the instance's host:port.
	Addr() string
	// InstanceID names the instance, for logs.
	InstanceID() string
	// Release frees the slot after a request the instance answered.
	Release()
	// Fail frees the slot of an instance that could not answer (its
	// connection was refused or broke): the scheduler evicts it.
	Fail(err error)
	// RequestLog starts the log of this request on the instance, whose
	// lines the FC Invoke Start/End markers written through it group.
	// When collect is set the request's lines are kept in memory for
	// x-fc-log-type: Tail; nothing is read back from log files.
	RequestLog(collect bool) RequestLog
}

// RequestLog is one request's log on its instance (package instance's
// RequestLog).
type RequestLog interface {
	// LogAt writes a line of fcd's own, dated t, to the instance's log:
	// text followed by the request's id, as in "FC Invoke Start
	// RequestId: <id>". Two parts, so the warm path's markers need no
	// string built; t is a clock reading the proxy made for the request
	// anyway (when it sent it, when its answer was read).
	LogAt(t time.Time, text, requestID string)
	// End stops collecting and returns the request's lines, oldest first
	// (nil when not collecting). It is called once.
	End() []string
}

// FC invocation headers.
const (
	headerInvocationType = "x-fc-invocation-type"
	headerLogType        = "x-fc-log-type"
	headerLogResult      = "x-fc-log-result"
	headerErrorType      = "x-fc-error-type"
	headerStatus         = "x-fc-status"
	headerControlPath    = "x-fc-control-path"

	errorTypeUnhandled = "UnhandledInvocationError"
	maxLogTail         = 4096

	// bufferLimit is the largest response body the proxy reads whole before
	// answering; larger or unsized bodies are streamed.
	bufferLimit = 64 << 10
)

// CodeAsyncNotSupported answers an invocation type fcd does not serve.
const CodeAsyncNotSupported = "InvalidArgument"

// invocation is what differs between InvokeFunction and an HTTP trigger.
type invocation struct {
	controlPath string // "/invoke" or "/http-invoke"
	// path is the instance-side request URI (path and query) for HTTP
	// triggers; InvokeFunction always sends POST /invoke.
	path []byte
	// body is InvokeFunction's event, or a signed HTTP trigger request's
	// body, read whole to check its signature. Other HTTP trigger requests
	// stream the client's body instead.
	body   []byte
	signed bool
	// qualifier is what the request asked for (LATEST, a version id, an
	// alias), as the instance is told in x-fc-qualifier; set by target.
	qualifier string
	// routeQualifier is a custom domain route's qualifier, which takes
	// the place of the function's HTTP trigger's.
	routeQualifier string
	// async, for an attempt of an async event, begins the attempt once
	// it holds a lease; nil for a client's request.
	async *asyncAttempt
	// cached is the function as the request's route found it in the
	// function cache, so target need not look it up again; nil when the
	// route did not look.
	cached *cachedFunction
}

// cachedFunction is a function with its HTTP trigger and the per-request
// header values it needs, computed once per version.
type cachedFunction struct {
	// name is the name the function is cached under.
	name     string
	fn       *api.Function
	memory   string
	deadline time.Duration
	// http is the function's HTTP trigger configuration, nil when it has
	// none (then it has no HTTP endpoint).
	http *api.HTTPTriggerConfig
	// triggerQualifier is the qualifier the HTTP trigger routes to.
	triggerQualifier string
	// head is the function's constant x-fc-* request headers, built on
	// first use (fcHead).
	head headHolder
}

// functionCache keeps parsed functions so the warm path does no store read.
// The store's watch keeps it exact (follow.go): every change to a function
// or its triggers, whoever made it, forgets the function.
type functionCache struct {
	mu  sync.RWMutex
	m   map[string]*cachedFunction
	gen uint64 // bumped by forget, so a fill racing a change is not kept
}

func (c *functionCache) get(ctx context.Context, st FunctionReader, name string) (*cachedFunction, error) {
	c.mu.RLock()
	cf, gen := c.m[name], c.gen
	c.mu.RUnlock()
	if cf != nil {
		return cf, nil
	}
	f, err := st.GetFunction(ctx, name)
	if err != nil {
		return nil, err
	}
	cf = &cachedFunction{name: name, fn: f, memory: strconv.Itoa(int(f.MemorySize)), deadline: time.Duration(f.Timeout) * time.Second}
	triggers, err := st.ListTriggers(ctx, name)
	if err != nil {
		return nil, err
	}
	for _, t := range triggers {
		if t.TriggerType == api.TriggerTypeHTTP {
			hc, err := t.HTTPConfig()
			if err != nil {
				return nil, fmt.Errorf("trigger %s of %s: %w", t.TriggerName, name, err)
			}
			cf.http = &hc
			cf.triggerQualifier = t.Qualifier
		}
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]*cachedFunction{}
	}
	if c.gen == gen {
		c.m[name] = cf
	}
	c.mu.Unlock()
	return cf, nil
}

// has reports whether name is cached, which only a function that exists,
// and so has a valid name, can be.
func (c *functionCache) has(name string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[name] != nil
}

// lookup returns the cached function named b, or nil, without
// allocating.
func (c *functionCache) lookup(b []byte) *cachedFunction {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[string(b)]
}

func (c *functionCache) forget(name string) {
	c.mu.Lock()
	delete(c.m, name)
	c.gen++
	c.mu.Unlock()
}

// invoke serves one invocation of function name.
func (s *Server) invoke(ctx *fasthttp.RequestCtx, rid, name string, inv invocation) {
	if isAsync(ctx, inv) {
		s.invokeAsync(ctx, rid, name, inv)
		return
	}
	if s.opts.Scheduler == nil {
		s.fail(ctx, rid, newError(http.StatusServiceUnavailable, "ServiceUnavailable", "this fcd runs no instances (no scheduler configured)"))
		return
	}
	if it := ctx.Request.Header.Peek(headerInvocationType); inv.controlPath == "/invoke" && len(it) > 0 && !bytes.EqualFold(it, []byte("Sync")) {
		s.fail(ctx, rid, newError(http.StatusBadRequest, CodeInvalidArgument, fmt.Sprintf("%s %q is invalid: Sync or Async", headerInvocationType, it)))
		return
	}
	cf, err := s.target(ctx, name, &inv) // versions.go
	if err != nil {
		s.fail(ctx, rid, toAPIError(err, CodeFunctionNotFound))
		return
	}
	if inv.controlPath == "/http-invoke" {
		if aerr := s.checkTrigger(ctx, name, cf.http, &inv); aerr != nil {
			s.fail(ctx, rid, aerr)
			return
		}
	}

	// The request's context (x.ctx) ends when the client goes away or fcd
	// stops for good, as the client watch finds; either aborts the call
	// to the instance. It is not a child of fcd's context: registering
	// every request with one shared parent costs more than the warm
	// request itself. An async attempt has no client to watch: its own
	// context (a stopped task, the queue closing) ends it. The exchange
	// releases the context when the request ends, which for a streamed
	// response is after this handler. One allocation holds the request's
	// state, its context, call and watch.
	x := &exchange{s: s, cf: cf, rid: rid}
	x.ctx.parent, x.ctx.detach = s.ctx, true
	if inv.async != nil {
		x.ctx.parent, x.ctx.detach = inv.async.ctx, false
	}
	x.watch.start(&s.clients, ctx.Conn(), s.ctx, x)
	defer x.watch.stop()

	// Fix the request's arrival time before waiting for an instance:
	// with LazyRequestTime the clock is read on the first ctx.Time, and
	// forwarded compares the arrival with a cold start's readiness.
	ctx.Time()
	lease, err := s.acquire(&x.ctx, ctx, cf)
	if err != nil {
		s.failAcquire(ctx, rid, name, err, &x.ctx)
		x.done()
		return
	}
	if inv.async != nil && !inv.async.start(lease) {
		x.done()
		return
	}
	x.lease = lease
	s.forward(ctx, rid, cf, inv, x)
	s.forwarded(ctx, x)
}

func (s *Server) failAcquire(ctx *fasthttp.RequestCtx, rid, name string, err error, reqCtx context.Context) {
	if errors.Is(context.Cause(reqCtx), errAborted) {
		s.metrics.clientClosed.Add(1)
		s.log.Info("client closed request", "requestId", rid, "function", name, "code", CodeClientClosedRequest)
		writeError(ctx, rid, newError(statusClientClosed, CodeClientClosedRequest, "the client closed the request before an instance was ready"))
		return
	}
	aerr := acquireError(err)
	switch aerr.Status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		s.metrics.throttled.Add(1)
	case http.StatusPreconditionFailed:
		s.metrics.startFailures.Add(1)
	}
	s.fail(ctx, rid, aerr)
}

// exchange is one request on a leased instance, from the moment it is
// sent until its lease ends.
type exchange struct {
	s     *Server
	cf    *cachedFunction
	lease Lease
	rlog  RequestLog
	lines []string // the request's log, after end, when collected
	cl    call
	rid   string
	sent  time.Time
	// finished is when the response was read, zero until then.
	finished time.Time
	ended    atomic.Bool

	// ctx is the request's context (see invoke).
	ctx   requestContext
	watch clientWatch
	// body wraps a streamed client body (buildUpstreamRequest).
	body clientBody
	// out is the request the instance gets.
	out outRequest
}

// endTime is when the request ended, for metering.
func (x *exchange) endTime() time.Time {
	if !x.finished.IsZero() {
		return x.finished
	}
	return time.Now()
}

// done releases the request's context.
func (x *exchange) done() { x.ctx.cancelCause(nil) }

// clientGone is the client watch's verdict: the client went away, or fcd
// stops for good.
func (x *exchange) clientGone(cause error) {
	x.ctx.cancelCause(cause)
	x.cl.abort()
}

// end closes the request's log, meters it and ends its lease; failed
// evicts the instance. Only the first call counts.
func (x *exchange) end(failed error) {
	if !x.ended.CompareAndSwap(false, true) {
		return
	}
	defer x.done()
	ended := x.endTime()
	x.rlog.LogAt(ended, invokeEnd, x.rid)
	x.lines = x.rlog.End()
	if m := x.s.opts.Meter; m != nil {
		m.Record(billing.InvocationRecord{
			Function: x.cf.fn.FunctionName, RequestID: x.rid, InstanceID: x.lease.InstanceID(),
			MemoryMB: int(x.cf.fn.MemorySize), Start: x.sent, End: ended,
		})
	}
	if failed != nil {
		x.lease.Fail(failed)
	} else {
		x.lease.Release()
	}
}

// forward sends the request to the leased instance and relays its answer.
// Every path ends the exchange exactly once.
func (s *Server) forward(ctx *fasthttp.RequestCtx, rid string, cf *cachedFunction, inv invocation, x *exchange) {
	lease := x.lease
	// The address is formatted only when it is needed: for
	// InvokeFunction's Host header, and to dial (roundTripAt).
	var host string
	if inv.controlPath == "/invoke" {
		host = lease.Addr()
	}
	body := s.buildUpstreamRequest(ctx, &x.out, rid, cf, inv, host, &x.body)
	if err := s.roleHeaders(ctx, &x.out, cf.fn); err != nil {
		x.done()
		lease.Release()
		s.fail(ctx, rid, newError(http.StatusInternalServerError, CodeInternal, err.Error()))
		return
	}

	tail := bytes.EqualFold(ctx.Request.Header.Peek(headerLogType), []byte("Tail"))
	// The function's timeout runs from when its instance gets the request,
	// not from the start of a cold start.
	x.sent = time.Now()
	x.rlog = lease.RequestLog(tail)
	x.rlog.LogAt(x.sent, invokeStart, rid)
	// The instance's response head is read straight into the client's
	// response (relayHead): no second parse, no copy of its headers.
	h := &ctx.Response.Header
	conn, err := s.upstream.roundTripAt(&x.cl, lease.InstanceID(), lease, &x.out, h, x.sent, x.sent.Add(cf.deadline))
	// Reading a head starts from an empty one: the id handle set is
	// set again (the instance cannot set its own).
	setRequestID(h, rid)
	// The exchange may outlive the handler (a streamed response): let go
	// of the client's request.
	head := x.out.head
	x.out = outRequest{}
	if err != nil && body != nil && body.err != nil {
		err = &errClientBody{body.err}
	}
	if err != nil {
		s.upstreamFailed(ctx, x, inv, err)
		return
	}
	if !relayHead(h) {
		conn.noReuse = true
	}
	if inv.controlPath == "/invoke" && string(h.Peek(headerStatus)) == "404" {
		h.Set(headerErrorType, errorTypeUnhandled)
		s.metrics.functionErrors.Add(1)
	}

	size := h.ContentLength()
	if bodyless := head || noBody(h.StatusCode()); bodyless || tail || (size >= 0 && size <= bufferLimit) {
		if !bodyless {
			if err := readBody(&ctx.Response, conn.br); err != nil {
				conn.Close()
				s.upstreamFailed(ctx, x, inv, err)
				return
			}
		}
		s.finish(conn, nil, x)
		if tail {
			setLogTail(ctx, x.lines)
		}
		if inv.async == nil {
			deferResponse(ctx.Conn())
		}
		return
	}
	// Large or unsized: stream it. The lease and the connection are
	// released when fasthttp has written the body and closes the stream.
	// A client that does not read holds the slot no longer than the
	// function's timeout: the write fails then, and the stream closes.
	// (An async attempt has no client connection.)
	resp := fasthttp.AcquireResponse()
	resp.StreamBody = true
	resp.Header.SetContentLength(size) // the framing the stream reads
	resp.ReadBody(conn.br, 0)          // a stream: nothing read yet, no error
	if inv.async == nil {
		ctx.SetWriteDeadline(x.sent.Add(cf.deadline))
	}
	ctx.SetBodyStream(&streamedBody{x: x, conn: conn, resp: resp}, size)
}

// relayHead makes the instance's response head h the client's, less the
// connection-scoped headers (RFC 9110 7.6.1). keep reports whether the
// instance's connection may serve another request after this response.
func relayHead(h *fasthttp.ResponseHeader) (keep bool) {
	keep = !h.ConnectionClose() && h.ContentLength() != -2
	var hop [len(hopHeaders)]bool
	found := false
	for k := range h.All() {
		if !maybeHop(k) {
			continue
		}
		for i, name := range hopHeaders {
			if len(k) == len(name) && bytes.EqualFold(k, []byte(name)) {
				hop[i], found = true, true
			}
		}
	}
	if !found {
		return keep
	}
	// The body's framing survives: the client's is fasthttp's to write.
	size := h.ContentLength()
	for i, name := range hopHeaders {
		if hop[i] {
			h.Del(name)
		}
	}
	if size == -1 {
		h.SetContentLength(-1)
	}
	return keep
}

// noBody reports a status whose response has no body (RFC 9110 6.4.1).
func noBody(status int) bool {
	return status < 200 || status == fasthttp.StatusNoContent || status == fasthttp.StatusNotModified
}

// readBody reads the instance's response body, framed as dst's head says,
// into dst: one copy, from the connection's reader into the client's
// response.
func readBody(dst *fasthttp.Response, br *bufio.Reader) error {
	chunked := dst.Header.ContentLength() == -1
	err := dst.ReadBody(br, maxTailBody)
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		return errTooLargeForTail
	}
	if err == nil && chunked {
		err = dst.Header.ReadTrailer(br)
	}
	return err
}

// maxTailBody bounds a response buffered to put the log tail in its head.
const maxTailBody = 32 << 20

// errTooLargeForTail is a response too large to buffer for a log tail; the
// instance did nothing wrong.
var errTooLargeForTail = fmt.Errorf("the response is over %d bytes, too large to return with x-fc-log-type: Tail", maxTailBody)

// finish ends a request whose response body was read whole, pooling the
// connection unless it is unfit for reuse; resp is a streamed response's
// own, nil for one read into the client's.
func (s *Server) finish(conn *upConn, resp *fasthttp.Response, x *exchange) {
	keep := !conn.noReuse
	if resp != nil {
		keep = keep && !resp.ConnectionClose()
		resp.CloseBodyStream()
		fasthttp.ReleaseResponse(resp)
	}
	// A late abort must not reach the connection's next user.
	x.cl.detach()
	x.finished = time.Now()
	if keep {
		s.upstream.put(conn, x.finished)
	} else {
		conn.Close()
	}
	x.end(nil)
}

// streamedBody relays a response body and ends the request when fasthttp
// closes it. fasthttp calls CloseWithError with the error writing to the
// client, then Close, once each.
type streamedBody struct {
	x    *exchange
	conn *upConn
	resp *fasthttp.Response
	err  error // reading from the instance
	werr error // writing to the client
	eof  bool
}

func (b *streamedBody) Read(p []byte) (int, error) {
	n, err := b.resp.BodyStream().Read(p)
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil:
		b.err = err
	}
	return n, err
}

// CloseWithError learns whether the client got the whole body.
func (b *streamedBody) CloseWithError(err error) error {
	b.werr = err
	return nil
}

// Close ends the request: the connection is pooled only when the body was
// read to its end; a body cut short by the instance evicts it, one the
// client stopped taking does not.
func (b *streamedBody) Close() error {
	x := b.x
	if b.eof && b.err == nil && b.werr == nil {
		x.s.finish(b.conn, b.resp, x)
		return nil
	}
	b.conn.Close()
	b.resp.CloseBodyStream()
	fasthttp.ReleaseResponse(b.resp)
	if b.err != nil && !x.cl.isAborted() && isTimeout(b.err) {
		// The function ran out of time mid-body; its instance is alive.
		x.s.metrics.timeouts.Add(1)
		x.s.log.Warn("function timed out while streaming its response", "requestId", x.rid, "function", x.cf.fn.FunctionName, "instance", x.lease.InstanceID())
		x.end(nil)
		return nil
	}
	if b.err != nil && !x.cl.isAborted() {
		x.s.log.Warn("instance response body broke off", "requestId", x.rid, "function", x.cf.fn.FunctionName, "instance", x.lease.InstanceID(), "error", b.err)
		x.end(b.err)
		return nil
	}
	x.end(nil)
	return nil
}

// upstreamFailed answers a request whose instance did not answer.
func (s *Server) upstreamFailed(ctx *fasthttp.RequestCtx, x *exchange, inv invocation, err error) {
	fn, rid, lease := x.cf.fn, x.rid, x.lease
	// roundTripAt reads the instance's head into the client's response:
	// an error answer must carry none of it (a Content-Encoding, a
	// cookie), only the request id set before.
	ctx.Response.Header.Reset()
	setRequestID(&ctx.Response.Header, rid)
	var clientBody *errClientBody
	switch {
	case errors.Is(err, errAborted) || x.cl.isAborted():
		x.end(nil)
		s.metrics.clientClosed.Add(1)
		s.log.Info("client closed request", "requestId", rid, "function", fn.FunctionName, "instance", lease.InstanceID(), "code", CodeClientClosedRequest)
		writeError(ctx, rid, newError(statusClientClosed, CodeClientClosedRequest, "the client closed the request"))
	case errors.Is(err, errBodyTooLarge):
		x.end(nil)
		ctx.SetConnectionClose()
		writeError(ctx, rid, newError(http.StatusRequestEntityTooLarge, CodeEntityTooLarge, errBodyTooLarge.Error()))
	case errors.As(err, &clientBody):
		x.end(nil)
		s.log.Info("client request body broke off", "requestId", rid, "function", fn.FunctionName, "error", err)
		writeError(ctx, rid, newError(http.StatusBadRequest, CodeInvalidArgument, err.Error()))
	case errors.As(err, new(*errRequest)):
		x.end(nil)
		writeError(ctx, rid, newError(http.StatusBadRequest, CodeInvalidArgument, err.Error()))
	case errors.Is(err, errTooLargeForTail):
		x.end(nil)
		writeError(ctx, rid, newError(http.StatusBadRequest, CodeEntityTooLarge, err.Error()))
	case isTimeout(err) && !errors.As(err, new(*errDial)):
		// The instance is alive but slow: its slot is free again once its
		// connection is gone, which roundTrip has closed.
		msg := fmt.Sprintf("Function timed out after %d seconds", fn.Timeout)
		x.rlog.LogAt(time.Now(), msg+" RequestId: ", rid)
		x.end(nil)
		s.metrics.timeouts.Add(1)
		s.log.Warn(msg, "requestId", rid, "function", fn.FunctionName, "instance", lease.InstanceID())
		s.functionError(ctx, inv, http.StatusGatewayTimeout, functionFailure{ErrorMessage: msg})
	default:
		// Before the lease ends: its eviction would stop the instance and
		// hide how it ended.
		if xr, ok := lease.(exitReporter); ok {
			wctx, cancel := context.WithTimeout(s.ctx, exitWait)
			if xerr := xr.Exited(wctx); xerr != nil {
				err = xerr
			}
			cancel()
		}
		f := instanceFailure(lease.InstanceID(), err)
		if f.ErrorType != "" {
			x.rlog.LogAt(time.Now(), f.headline()+" RequestId: ", rid)
		}
		x.end(err)
		s.upstream.closeInstance(lease.InstanceID())
		s.log.Warn("instance failed mid-request", "requestId", rid, "function", fn.FunctionName, "instance", lease.InstanceID(), "error", err)
		s.functionError(ctx, inv, http.StatusBadGateway, f)
	}
}

// functionError answers an invocation that failed inside the function (it
// timed out or its instance died), as FC does: InvokeFunction gets 200 with
// x-fc-error-type so SDK callers read the error body; an HTTP trigger gets
// httpStatus.
func (s *Server) functionError(ctx *fasthttp.RequestCtx, inv invocation, httpStatus int, f functionFailure) {
	status := http.StatusOK
	if inv.controlPath != "/invoke" {
		status = httpStatus
	}
	s.metrics.functionErrors.Add(1)
	ctx.Response.Header.Set(headerErrorType, errorTypeUnhandled)
	ctx.Response.Header.SetContentType("application/json")
	ctx.SetStatusCode(status)
	body, _ := json.Marshal(f)
	ctx.SetBody(body)
}

// setLogTail puts the last 4 KB of the request's log lines, base64, in
// x-fc-log-result.
func setLogTail(ctx *fasthttp.RequestCtx, lines []string) {
	start, size := len(lines), 0
	for start > 0 && size+len(lines[start-1])+1 <= maxLogTail {
		start--
		size += len(lines[start]) + 1
	}
	var b bytes.Buffer
	for _, l := range lines[start:] {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	ctx.Response.Header.Set(headerLogResult, base64.StdEncoding.EncodeToString(b.Bytes()))
}

// Log markers, as FC writes them around each request's lines.
const (
	invokeStart = "FC Invoke Start RequestId: "
	invokeEnd   = "FC Invoke End RequestId: "
)

// hopHeaders are connection-scoped and never forwarded (RFC 9110 7.6.1).
var hopHeaders = [...]string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// The constant parts of an upstream request line, which are only read:
// a []byte conversion per request would allocate.
var (
	http11     = []byte("HTTP/1.1")
	methodPost = []byte(http.MethodPost)
	invokeURI  = []byte("/invoke")
)

// buildUpstreamRequest makes out the request the instance receives;
// host is the instance's address, for InvokeFunction's Host header. It
// returns body, set to wrap a streamed client body, or nil when the body
// is in memory.
func (s *Server) buildUpstreamRequest(ctx *fasthttp.RequestCtx, out *outRequest, rid string, cf *cachedFunction, inv invocation, host string, body *clientBody) *clientBody {
	*out = outRequest{fc: cf.fcHead(s), rid: rid, qualifier: inv.qualifier, controlPath: inv.controlPath, proto: http11}
	if inv.controlPath == "/invoke" {
		out.method, out.uri = methodPost, invokeURI
		out.host, out.contentType = host, "application/octet-stream"
	} else {
		h := &ctx.Request.Header
		out.method, out.uri, out.proto, out.client = h.Method(), inv.path, h.Protocol(), h
		out.head = h.IsHead()
	}
	switch stream := ctx.RequestBodyStream(); {
	case inv.controlPath == "/invoke" || inv.signed:
		out.body = inv.body
		return nil
	case stream != nil:
		*body = clientBody{r: stream, want: int64(ctx.Request.Header.ContentLength())}
		out.stream, out.size = body, ctx.Request.Header.ContentLength()
		return body
	default:
		out.body = ctx.Request.Body()
		return nil
	}
}

// hopLens has bit n set when a hop header's name is n bytes long: most
// headers are ruled out by their length alone, before any comparison.
var hopLens = func() (m uint32) {
	for _, h := range hopHeaders {
		if len(h) >= 32 {
			// Its bit would be lost, and the header never filtered.
			panic("proxy: hop header " + h + " is too long for hopLens")
		}
		m |= 1 << len(h)
	}
	return m
}()

// maybeHop reports whether k has the length of a hop header's name.
func maybeHop(k []byte) bool { return len(k) < 32 && hopLens&(1<<len(k)) != 0 }

func isHopHeader(k []byte) bool {
	if !maybeHop(k) {
		return false
	}
	for _, h := range hopHeaders {
		if len(k) == len(h) && bytes.EqualFold(k, []byte(h)) {
			return true
		}
	}
	return false
}
