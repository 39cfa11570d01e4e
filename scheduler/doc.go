// Package scheduler decides which instance serves each invocation: it keeps
// a pool of instances per function and published version (the latest
// configuration is a pool of its own), caps a function's concurrent
// requests over all its versions (reserved concurrency), hands out concurrency slots on warm
// instances (least loaded first), coalesces cold starts so that N waiting
// requests start at most ceil(N/concurrency) instances, queues requests with
// a bound and a deadline, keeps the host within its memory budget, keeps
// provisioned instances warm, stops idle ones, evicts instances that die,
// and drains instances of a function's previous configuration.
//
// It knows nothing of HTTP or containerd: instances are started through the
// Starter the caller provides and seen through the small Instance interface.
// Its errors carry errdefs categories (errors.go); mapping them to FC error
// codes is the proxy's business. Time comes from Options.Clock, so tests
// move it by hand; Options.Stopping tells the caller of every instance
// taken out of service (the proxy closes its connections to it).
//
// Lifecycle of an instance in a pool:
//
//	starting ──► ready (idle ⇄ busy) ──► draining ──► stopped
//	    │                 │                              ▲
//	    └── start failed  └── died or failed a request ──┘
//
// A ready instance serves up to Function.Concurrency leases at once. It
// drains when its function is updated or removed, and stops when its last
// lease is released. An instance idle for Options.IdleTimeout stops unless
// it is needed to keep the function's provisioned target; an idle one may
// also stop earlier when another function needs its memory.
//
// Requests wait in a per-function queue, oldest first. A cold start begun
// for them that fails hands its error to the oldest Concurrency waiters,
// the requests it was started for; the others keep waiting and get a start
// of their own, so every request sees at most one failed start.
//
// Per function: Function.IdleTimeout replaces the idle timeout,
// Function.ProvisionedOnly serves from provisioned instances only (no
// on-demand start; ErrOnDemandDisabled without a target), and
// Function.SessionAffinity keeps the requests of one session key
// (AcquireSession) on one instance (session.go). StartError reports why
// the last start failed.
//
// Hot path: Acquire and Release on a warm instance take one pool lock and
// allocate only the Lease; no goroutine runs per request. Every goroutine
// the scheduler starts (the janitor, cold starts, instance watchers and
// stops) is waited for by Close.
package scheduler
