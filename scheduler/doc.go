// Package scheduler decides which instance serves each invocation: it keeps
// a pool of instances per function, hands out concurrency slots on warm
// instances (least loaded first), coalesces cold starts so that N waiting
// requests start at most ceil(N/concurrency) instances, queues requests with
// a bound and a deadline, keeps provisioned instances warm, stops idle ones,
// evicts instances that die, and drains instances of a function's previous
// configuration.
//
// It knows nothing of HTTP or containerd: instances are started through the
// Starter the caller provides and seen through the small Instance interface.
//
// Lifecycle of an instance in a pool:
//
//	starting ──► ready (idle ⇄ busy) ──► draining ──► stopped
//	    │                 │                              ▲
//	    └── start failed  └── died (Done closed) ────────┘
//
// A ready instance serves up to Function.Concurrency leases at once. It
// drains when its function is updated or removed, and stops when its last
// lease is released. An instance idle for Options.IdleTimeout stops unless
// it is needed to keep the function's provisioned target.
package scheduler
