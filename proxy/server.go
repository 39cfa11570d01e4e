// Package proxy is fcd's fasthttp frontend: it routes the Function Compute
// 3.0 control API, checks request signatures, maps errors to FC's codes and
// HTTP statuses, and forwards invocations to instances.
//
// It keeps no state about instances beyond one request: which instance
// serves a request is the scheduler's decision, and function metadata lives
// in the store.
package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/fcd-dev/fcd/api"
)

// FunctionReader is what the proxy reads of the metadata store, and the
// watch its function cache and the scheduler follow (follow.go).
type FunctionReader interface {
	GetFunction(ctx context.Context, name string) (*api.Function, error)
	ListFunctions(ctx context.Context, prefix, start string, limit int) ([]*api.Function, string, error)
	GetTrigger(ctx context.Context, function, name string) (*api.Trigger, error)
	ListTriggers(ctx context.Context, function string) ([]*api.Trigger, error)

	// Revision is the revision of the last committed change.
	Revision(ctx context.Context) (uint64, error)
	// Watch delivers the changes committed after the call, in revision
	// order, until ctx ends.
	Watch(ctx context.Context) <-chan api.Event
}

// FunctionWriter is what the control API writes to the metadata store.
type FunctionWriter interface {
	CreateFunction(ctx context.Context, f *api.Function) error
	UpdateFunction(ctx context.Context, name string, change func(*api.Function) (*api.Function, error)) (*api.Function, error)
	DeleteFunction(ctx context.Context, name string) error

	CreateTrigger(ctx context.Context, function string, t *api.Trigger) error
	UpdateTrigger(ctx context.Context, function, name string, change func(*api.Trigger) (*api.Trigger, error)) (*api.Trigger, error)
	DeleteTrigger(ctx context.Context, function, name string) error
}

// FunctionStore is the metadata store as the proxy uses it.
type FunctionStore interface {
	FunctionReader
	FunctionWriter
}

// Headers fcd sets on responses.
const (
	HeaderRequestID = "x-fc-request-id"
)

// requestIDKey is HeaderRequestID as fasthttp normalizes a header's
// name: setting it with SetCanonical skips normalizing it, twice per
// forwarded request.
var requestIDKey = []byte("X-Fc-Request-Id")

// setRequestID sets the response's request id. The []byte conversion of
// an id (at most 31 bytes) does not allocate: fasthttp copies it.
func setRequestID(h *fasthttp.ResponseHeader, rid string) {
	h.SetCanonical(requestIDKey, []byte(rid))
}

// Options configures a Server. The zero value of each field is its default.
type Options struct {
	// Functions is the metadata store. Required.
	Functions FunctionStore
	// Keys holds the access keys allowed to call the API. Required.
	Keys Keys
	// Region and AccountID name the functions' ARNs. Defaults "local" and
	// "0000000000000000".
	Region, AccountID string
	// ClockSkew is how far x-acs-date may be from the server's clock.
	// Zero means 15 minutes.
	ClockSkew time.Duration
	// MaxControlBody bounds control API request bodies. Zero means 6 MiB.
	MaxControlBody int
	// ShutdownGrace is how long requests in flight may run after Serve's
	// context ends. Zero means 30 s.
	ShutdownGrace time.Duration
	// Logger receives request errors. Nil means silent.
	Logger *slog.Logger
	// Now is the clock. Nil means time.Now.
	Now func() time.Time

	// Scheduler places invocations on instances. Nil means invocations are
	// refused with 503.
	Scheduler Scheduler
	// Domain routes HTTP trigger requests by Host: <function>.<Domain>.
	// Empty means "fcd.localhost".
	Domain string
	// Collectors are registered with /metrics next to the proxy's own.
	Collectors []prometheus.Collector
	// Pools learns of function updates and deletions, as the store's
	// watch reports them, and keeps provisioned instances. Nil disables
	// provision-config.
	Pools Pools
	// Provision keeps provisioned targets. Nil disables provision-config.
	Provision ProvisionStore
	// Logs serves instance logs to fcctl logs. Nil disables the endpoint.
	Logs LogReader
	// ColdStarts serves fcctl function coldstarts. Nil disables the
	// endpoint.
	ColdStarts ColdStartReader
	// Roles keeps roles: the role API and the check that a function's role
	// exists. Nil disables both.
	Roles RoleStore
	// Credentials gives instances their role's temporary keys in the
	// x-fc-access-key-* headers. Nil sends none.
	Credentials RoleCredentials
	// Ledger answers billing queries; Meter records invocations. Nil
	// disables each.
	Ledger Ledger
	Meter  Meter
	// Accelerator converts images and reports GetFunction's
	// accelerationInfo. Nil disables the acceleration API and reports
	// Preparing for functions that ask for acceleration.
	Accelerator Accelerator
	// Versions keeps versions, aliases, reserved concurrency and the
	// invocation switch (versions.go). Nil answers their APIs with 501 and
	// every qualifier but LATEST with VersionNotFound.
	Versions VersionStore
	// VersionPools drains deleted versions, caps reserved concurrency and
	// lists instances. Nil: no cap is applied and ListInstances is empty.
	VersionPools VersionPools
	// Async queues asynchronous invocations and serves the async task
	// and config APIs. Nil refuses async invocations with 400 and the
	// async APIs with 501.
	Async AsyncQueue
	// Console serves the web console's pages under /console/ (package
	// console). Nil serves none.
	Console fasthttp.RequestHandler

	// Limits bounds what a client can make fcd hold (edge.go).
	Limits Limits
	// SignedMetrics requires /metrics to be signed like the API. False
	// serves it to anyone who reaches the listen address, for Prometheus
	// scrapes without credentials.
	SignedMetrics bool
}

// Server is the frontend. Create it with New.
type Server struct {
	opts     Options
	log      *slog.Logger
	verifier verifier
	ids      requestIDs
	srv      *fasthttp.Server
	fns      functionCache
	vc       versionCache
	domains  domainCache
	follower *follower
	upstream *upstream
	clients  clientWatcher // of the requests in flight (watch.go)
	metrics  metrics
	metricsH fasthttp.RequestHandler
	gatherer prometheus.Gatherer // /metrics' registry, for /fcd/v1/stats
	bodies   bodyBudget
	statuses *statusLog // of the last forwarded requests (statuslog.go)
	// hostSuffix is "." + Domain, lower-case.
	hostSuffix string
	// ctx is the serving context: invocation contexts derive from it, so
	// shutdown cancels every wait.
	ctx context.Context
}

// New returns a Server for opts.
func New(opts Options) *Server {
	if opts.Region == "" {
		opts.Region = "local"
	}
	if opts.AccountID == "" {
		opts.AccountID = "0000000000000000"
	}
	if opts.ClockSkew == 0 {
		opts.ClockSkew = 15 * time.Minute
	}
	if opts.MaxControlBody == 0 {
		opts.MaxControlBody = 6 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ShutdownGrace == 0 {
		opts.ShutdownGrace = 30 * time.Second
	}
	if opts.Domain == "" {
		opts.Domain = "fcd.localhost"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts:     opts,
		log:      log,
		verifier: newVerifier(opts.Keys, opts.ClockSkew, opts.Now),
		ids:      newRequestIDs(),
		upstream: newUpstream(),
		statuses: new(statusLog),
		follower: newFollower(),
		ctx:      context.Background(),

		hostSuffix: "." + strings.ToLower(opts.Domain),
	}
	s.opts.Limits = s.opts.Limits.withDefaults()
	s.bodies.limit = s.opts.Limits.BodyBudget
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.metrics.collectors()...)
	reg.MustRegister(s.bodies.collectors()...)
	reg.MustRegister(opts.Collectors...)
	s.metricsH = metricsHandler(reg)
	s.gatherer = reg
	s.srv = s.newFastHTTP()
	return s
}

// Serve serves on ln until ctx is done, then shuts down gracefully: it
// stops accepting and lets requests in flight finish for up to
// Options.ShutdownGrace, then aborts what is left and returns.
//
// Serve may be called once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// Invocations run under hard, which outlives ctx by the grace period.
	hard, abort := context.WithCancel(context.WithoutCancel(ctx))
	defer abort()
	s.ctx = hard
	defer s.upstream.closeAll()
	// The watch starts before the first request, so every write a
	// request makes reaches follow.
	watchCtx, stopWatch := context.WithCancel(hard)
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		s.follow(watchCtx, s.opts.Functions.Watch(watchCtx))
	}()
	defer func() {
		stopWatch()
		<-followed
	}()
	errc := make(chan error, 1)
	go func() {
		errc <- s.srv.Serve(fastWriteListener{Listener: ln, perIP: newIPConns(s.opts.Limits.MaxConnsPerIP), watcher: &s.clients})
	}()
	sweep := time.NewTicker(s.upstream.idleTimeout)
	defer sweep.Stop()
	for {
		select {
		case err := <-errc:
			return err
		case now := <-sweep.C:
			s.upstream.sweep(now)
		case <-ctx.Done():
			return s.shutdown(ctx, errc, abort)
		}
	}
}

func (s *Server) shutdown(ctx context.Context, errc <-chan error, abort context.CancelFunc) error {
	gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownGrace)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.srv.ShutdownWithContext(gctx) }()
	select {
	case err := <-done:
		if err == nil {
			return <-errc
		}
	case <-gctx.Done():
	}
	// Past the grace: abort the invocations still running, which ends
	// their handlers, and wait for fasthttp to let go.
	s.log.Warn("shutdown grace period over; aborting requests in flight", "grace", s.opts.ShutdownGrace)
	abort()
	<-done
	return <-errc
}

// InstanceStopping tells the proxy that the scheduler took an instance out
// of service: its idle connections are closed. Give it to
// scheduler.Options.Stopping.
func (s *Server) InstanceStopping(instanceID string) { s.upstream.closeInstance(instanceID) }

// Handler returns the request handler, for tests that serve it themselves.
func (s *Server) Handler() fasthttp.RequestHandler { return s.handle }

const apiPrefix = "/" + api.Version + "/functions"

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	rid := s.ids.next()
	setRequestID(&ctx.Response.Header, rid)
	if name, ok := s.triggerHost(ctx.Host()); ok {
		if aerr := triggerRequestError(ctx); aerr != nil {
			s.fail(ctx, rid, aerr)
			return
		}
		s.httpTrigger(ctx, rid, name, ctx.RequestURI(), nil)
		s.releaseBody(ctx)
		return
	}
	path := ctx.Path()
	switch {
	case bytes.HasPrefix(path, triggerPrefix):
		if aerr := triggerRequestError(ctx); aerr != nil {
			s.fail(ctx, rid, aerr)
			return
		}
		name, uri, cf := s.triggerPath(ctx.RequestURI())
		s.httpTrigger(ctx, rid, name, uri, cf)
	case bytes.Equal(path, apiPrefixBytes) || bytes.HasPrefix(path, apiPrefixSlash):
		s.handleFunctions(ctx, rid, strings.TrimPrefix(string(path), apiPrefix))
	case bytes.HasPrefix(path, adminPrefixBytes):
		s.handleAdmin(ctx, rid)
	case string(path) == asyncConfigsPath:
		s.listAsyncConfigs(ctx, rid)
	case string(path) == concurrencyConfigsPath:
		s.listConcurrencyConfigs(ctx, rid)
	case bytes.HasPrefix(path, resourcesPrefix):
		s.handleResources(ctx, rid, string(path[len(resourcesPrefix):]))
	case string(path) == "/metrics":
		s.serveMetrics(ctx, rid)
	case s.opts.Console != nil && bytes.HasPrefix(path, consolePrefix):
		s.opts.Console(ctx)
	default:
		if d := s.customDomain(ctx, ctx.Host()); d != nil {
			s.domainRequest(ctx, rid, d)
			return
		}
		writeError(ctx, rid, newError(http.StatusNotFound, CodePathNotFound, "no API at "+string(path)))
	}
	s.releaseBody(ctx)
}

var (
	apiPrefixBytes = []byte(apiPrefix)
	apiPrefixSlash = []byte(apiPrefix + "/")
	triggerPrefix  = []byte("/fn/")
)

// handleFunctions routes /2023-03-30/functions[/{name}[/{sub}]].
func (s *Server) handleFunctions(ctx *fasthttp.RequestCtx, rid, rest string) {
	rest = strings.TrimPrefix(rest, "/")
	name, sub, _ := strings.Cut(rest, "/")
	sub, subName, _ := strings.Cut(sub, "/")
	method := string(ctx.Method())
	isInvoke := name != "" && sub == "invocations" && method == http.MethodPost
	limit := s.opts.MaxControlBody
	if isInvoke {
		limit = MaxInvokeBody
	}
	body, aerr := s.readSigned(ctx, limit)
	if aerr != nil {
		s.fail(ctx, rid, aerr)
		return
	}
	var err error
	switch {
	case isInvoke:
		s.metrics.invocations.Add(1)
		s.invoke(ctx, rid, unescape(name), invocation{controlPath: "/invoke", body: body})
		return
	case name == "" && method == http.MethodPost:
		err = s.createFunction(ctx, body)
	case name == "" && method == http.MethodGet:
		err = s.listFunctions(ctx)
	case name != "" && sub == "" && method == http.MethodGet:
		err = s.getFunction(ctx, name)
	case name != "" && sub == "" && method == http.MethodPut:
		err = s.updateFunction(ctx, name, body)
	case name != "" && sub == "" && method == http.MethodDelete:
		err = s.deleteFunction(ctx, name)
	case name != "" && sub == "provision-config" && isQualified(ctx):
		err = s.qualifiedProvision(ctx, unescape(name), method, body) // provision_versions.go
	case name != "" && sub == "provision-config" && method == http.MethodPut:
		err = s.putProvision(ctx, unescape(name), body)
	case name != "" && sub == "provision-config" && method == http.MethodGet:
		err = s.getProvision(ctx, unescape(name))
	case name != "" && sub == "provision-config" && method == http.MethodDelete:
		err = s.deleteProvision(ctx, unescape(name))
	case name != "" && sub == "logs" && method == http.MethodGet:
		err = s.readLogs(ctx, unescape(name))
	case name != "" && (sub == "async-invoke-config" || sub == "async-tasks"):
		err = s.handleAsync(ctx, unescape(name), sub, subName, method, body)
	case name != "" && sub == "triggers":
		err = s.handleTriggers(ctx, unescape(name), unescape(subName), method, body)
	case name != "" && isVersioningPath(sub):
		err = s.handleVersioning(ctx, unescape(name), sub, unescape(subName), method, body)
	case name == "" || sub == "" || sub == "provision-config" || sub == "logs":
		err = newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, method+" is not allowed on "+string(ctx.Path()))
	default:
		err = newError(http.StatusNotFound, CodePathNotFound, "no API at "+string(ctx.Path()))
	}
	if err != nil {
		s.fail(ctx, rid, toAPIError(err, CodeFunctionNotFound))
	}
}

// MaxInvokeBody bounds the event of a signed InvokeFunction call, which
// must be read whole to check its signature, and the body of an HTTP
// trigger request (FC's synchronous payload limit).
const MaxInvokeBody = 32 << 20

func (s *Server) fail(ctx *fasthttp.RequestCtx, rid string, err *apiError) {
	if err.Status >= 500 {
		s.log.Error("request failed", "requestId", rid, "method", string(ctx.Method()), "path", string(ctx.Path()), "code", err.Code, "error", err.Message)
	} else {
		s.log.Debug("request refused", "requestId", rid, "method", string(ctx.Method()), "path", string(ctx.Path()), "code", err.Code, "error", err.Message)
	}
	writeError(ctx, rid, err)
}

// requestIDs makes request ids unique across fcd runs without a syscall per
// request: a random prefix chosen at start and a counter.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() requestIDs {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(errors.New("proxy: no randomness for request ids: " + err.Error()))
	}
	return requestIDs{prefix: "1-" + hex.EncodeToString(b[:]) + "-"}
}

func (r *requestIDs) next() string {
	// One allocation: the id is built on the stack and copied once.
	var b [64]byte
	return string(strconv.AppendUint(append(b[:0], r.prefix...), r.n.Add(1), 16))
}

type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug("fasthttp", "msg", strings.TrimSpace(fmt.Sprintf(format, args...)))
}
