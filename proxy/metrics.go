package proxy

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// metrics counts what the proxy sees. Counters on the invoke path are plain
// atomics, read by collectors at scrape time, so a request pays no label
// lookup.
type metrics struct {
	invocations    atomic.Uint64
	functionErrors atomic.Uint64 // timeouts, dead instances, x-fc-status: 404
	timeouts       atomic.Uint64
	clientClosed   atomic.Uint64
	throttled      atomic.Uint64
	startFailures  atomic.Uint64
	asyncAccepted  atomic.Uint64
}

func (m *metrics) collectors() []prometheus.Collector {
	counter := func(name, help string, v *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "fcd", Name: name, Help: help},
			func() float64 { return float64(v.Load()) })
	}
	return []prometheus.Collector{
		counter("invocations_total", "Invocations received (InvokeFunction and HTTP triggers).", &m.invocations),
		counter("invocation_function_errors_total", "Invocations that failed in the function: timeouts, instances that died, x-fc-status: 404.", &m.functionErrors),
		counter("invocation_timeouts_total", "Invocations that ran past the function's timeout.", &m.timeouts),
		counter("invocation_client_closed_total", "Invocations whose client went away first (ClientClosedRequest, 499).", &m.clientClosed),
		counter("invocation_throttled_total", "Invocations refused for lack of capacity (ResourceExhausted, 429).", &m.throttled),
		counter("async_invocations_accepted_total", "Async invocations answered 202 (their event committed).", &m.asyncAccepted),
		counter("invocation_start_failures_total", "Invocations that failed because their instance did not start.", &m.startFailures),
	}
}

// metricsHandler serves reg in the Prometheus text format.
func metricsHandler(reg *prometheus.Registry) fasthttp.RequestHandler {
	return fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
}
