// Package async is fcd's durable queue of asynchronous invocations: the
// events InvokeFunction accepts with x-fc-invocation-type: Async, their
// retries and expiry, async tasks (events a caller can watch and stop) and
// destinations (the outcome sent on to another function). It owns the
// state machine and the workers that run events; it does not know HTTP:
// a Dispatcher, supplied by the proxy, runs one attempt through the same
// path as a synchronous invocation and says what came of it.
//
// # Bucket schema (version 1)
//
//	async/v1/                   root, versioned (internal/boltschema)
//	  meta/                     schema: "version" -> uint64 big-endian
//	  configs/<function>        JSON api.AsyncConfig
//	  events/<function>/<id>    JSON Event; id is the caller's task id or
//	                            the request id of the 202
//	  pending/<function>/<id>   empty; present while the event is not in
//	                            an end state, so a restart finds them
//	                            without reading the finished ones
//
// # States
//
//	Enqueued ──► Running ──► Succeeded
//	   ▲            │  └───► Failed      (attempts used up, or the function is gone)
//	   │            ▼
//	   └──────── Retrying                (a function error with attempts left)
//	Enqueued, Retrying ──► Expired       (older than maxAsyncEventAgeInSeconds when due)
//	Enqueued, Retrying ──► Stopped       (StopAsyncTask)
//	Running ──► Stopping ──► Stopped     (StopAsyncTask aborts the attempt)
//
// Every transition is committed (fsynced) before anything acts on it, and
// Enqueue returns only once the event is on disk. One committer runs all
// transitions: those that arrive while a commit is on its way to disk
// share the next transaction (group commit), none waits on a timer.
// Finished events are deleted after Options.Retention. An attempt becomes Running, and counts,
// only once its Dispatcher holds a slot on an instance, just before the
// event is sent; a start failure counts as an attempt too. Throttling (no
// capacity) uses no attempt: the event waits with exponential back-off
// from 0.5 s. Function errors are retried with back-off while attempts
// remain: 1 + maxAsyncRetryAttempts attempts in all.
//
// # Crashes
//
// Open recovers what a crash left: an event found Running was cut short
// mid-attempt, which counts (it may have reached the function), and it is
// retried or failed like a function error; an event found Stopping is
// Stopped. Delivery is therefore at least once, with the same request id
// on every attempt, so a function can de-duplicate.
//
// # Fair share
//
// Async events never take more than Options.Workers slots host-wide nor
// Options.PerFunction slots of one function at once. They wait for slots
// in the scheduler's queue alongside synchronous requests, first come
// first served, so a synchronous request waits behind at most PerFunction
// async events of its function, and never behind a backlog.
package async
