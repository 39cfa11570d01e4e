package remote

import (
	"cmp"
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fcd-dev/fcd/cache"
	"github.com/opencontainers/go-digest"
)

// Defaults for Options' zero values.
const (
	DefaultStreams          = 6
	DefaultMaxRequest       = 4 << 20
	DefaultBackgroundReq    = 1 << 20
	DefaultBackgroundQuiet  = time.Second
	DefaultRetryTimeout     = 30 * time.Second
	DefaultInitialBackoff   = 100 * time.Millisecond
	DefaultMaxBackoff       = 2 * time.Second
	DefaultStallTimeout     = 10 * time.Second
	DefaultBreakerThreshold = 5
	DefaultBreakerCooldown  = time.Second
	maxBreakerCooldown      = 30 * time.Second
	maxAuthRetries          = 3
)

// Options configure a Fetcher. The zero value is usable.
type Options struct {
	// Cache stores verified chunks (ReadChunk with a digest) and serves
	// them again. Nil means nothing is cached.
	Cache *cache.Cache
	// HoldBytes, with a Cache, keeps up to this many bytes of verified
	// chunks in memory (most recently used first) and writes a chunk to
	// the Cache only when it leaves memory, or at Close: a start-up's
	// chunks then cost no cache file while it waits, nor a read of one
	// when needed again. Zero means none: each chunk is written as it
	// arrives.
	HoldBytes int64
	// Streams bounds the GETs in flight to one registry. Background reads
	// use at most Streams-1 of them, so an on-demand or prefetch read
	// always finds one free once the requests on the wire finish, and
	// only one while on-demand reads are in flight or ended less than
	// BackgroundQuiet ago. Zero means DefaultStreams.
	Streams int
	// BackgroundQuiet is how long after the last on-demand GET background
	// reads stay at one stream. Zero means DefaultBackgroundQuiet.
	BackgroundQuiet time.Duration
	// BackgroundRequest bounds a background GET's bytes (below
	// MaxRequest), so an on-demand read that arrives waits for less. Zero
	// means DefaultBackgroundReq.
	BackgroundRequest int64
	// MaxRequest bounds the bytes of one GET made by coalescing adjacent
	// pending reads, and so the memory in flight per stream. Zero means
	// DefaultMaxRequest. A single read larger than it is still one GET.
	MaxRequest int64
	// MaxGap is the most bytes between two pending reads of a blob that
	// one GET reads and discards to serve both: a registry spends about as
	// much on a request for a few KiB as on one for MiBs (the reference
	// implementation reads 4 MiB from its storage for each), while a few
	// KiB more cost the link little. But bytes discarded are fetched again
	// when read later, which a caller that knows what lies between its
	// reads avoids by asking for it too (lazyfs does). Zero means only
	// adjacent reads share a GET.
	MaxGap int64
	// RetryTimeout bounds how long a read retries a failing registry
	// before it fails with ErrUnavailable. Zero means DefaultRetryTimeout
	// (30 s).
	RetryTimeout time.Duration
	// InitialBackoff and MaxBackoff bound the exponential back-off between
	// retries. Zero means DefaultInitialBackoff and DefaultMaxBackoff.
	InitialBackoff, MaxBackoff time.Duration
	// StallTimeout is how long a request may wait for its response headers
	// or for the next body bytes before it is abandoned and retried. Zero
	// means DefaultStallTimeout.
	StallTimeout time.Duration
	// BreakerThreshold is the number of consecutive failed requests to a
	// registry host that opens its circuit breaker; BreakerCooldown is how
	// long it then stays open before one probe request (doubling while
	// probes fail, up to 30 s or half of RetryTimeout, whichever is less).
	// While it is open, reads wait (within their RetryTimeout) instead of
	// sending requests. Zero means the defaults.
	BreakerThreshold int
	BreakerCooldown  time.Duration
	// Logger receives retries, re-authentications and breaker changes.
	// Nil means no logging.
	Logger *slog.Logger
}

// Fetcher schedules the range reads of every Blob made from it: one
// queue per registry, on-demand reads first, then prefetch, then
// background; identical reads in flight shared; pending reads of one
// blob that are adjacent (or close: Options.MaxGap) coalesced into one
// GET; at most Options.Streams GETs per registry at once. Make one per
// host process and share it. It is safe for concurrent use.
//
// Lock order: Fetcher.mu, then breaker.mu or authState.mu (never the
// other way). No lock is held across network I/O.
type Fetcher struct {
	opts  Options
	cache *cache.Cache
	held  *heldChunks // nil without Options.HoldBytes
	log   *slog.Logger

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	queues   map[string]*queue // by registry name
	items    map[itemKey]*item // pending and in flight
	seq      uint64
	breakers map[string]*breaker // by registry host (mirrors apart)
	// kept counts the verified chunks put in memory or the cache, each
	// added under mu before its read leaves items (joinLooked).
	kept atomic.Uint64

	stats counters
}

// New returns a Fetcher. Close it to stop its requests.
func New(opts Options) *Fetcher {
	opts.Streams = cmp.Or(opts.Streams, DefaultStreams)
	opts.MaxRequest = cmp.Or(opts.MaxRequest, DefaultMaxRequest)
	opts.MaxGap = max(opts.MaxGap, 0)
	opts.BackgroundQuiet = cmp.Or(opts.BackgroundQuiet, DefaultBackgroundQuiet)
	opts.BackgroundRequest = cmp.Or(opts.BackgroundRequest, DefaultBackgroundReq)
	opts.RetryTimeout = cmp.Or(opts.RetryTimeout, DefaultRetryTimeout)
	opts.InitialBackoff = cmp.Or(opts.InitialBackoff, DefaultInitialBackoff)
	opts.MaxBackoff = max(cmp.Or(opts.MaxBackoff, DefaultMaxBackoff), opts.InitialBackoff)
	opts.StallTimeout = cmp.Or(opts.StallTimeout, DefaultStallTimeout)
	opts.BreakerThreshold = cmp.Or(opts.BreakerThreshold, DefaultBreakerThreshold)
	opts.BreakerCooldown = cmp.Or(opts.BreakerCooldown, DefaultBreakerCooldown)
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Fetcher{
		opts: opts, cache: opts.Cache, log: log, ctx: ctx, cancel: cancel,
		queues:   make(map[string]*queue),
		items:    make(map[itemKey]*item),
		breakers: make(map[string]*breaker),
	}
	if f.cache != nil && opts.HoldBytes > 0 {
		f.held = newHeldChunks(f, opts.HoldBytes)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.held.run(ctx)
		}()
	}
	return f
}

// Close fails pending reads with ErrClosed, cancels those in flight,
// writes the chunks held in memory to the cache and waits for its
// goroutines. Later reads fail with ErrClosed.
func (f *Fetcher) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	for _, q := range f.queues {
		for _, it := range q.pending {
			f.finishLocked(it, nil, ErrClosed)
		}
		q.pending = nil
	}
	f.mu.Unlock()
	f.cancel()
	f.wg.Wait()
	return nil
}

// Stats returns the counters of every Blob made from f.
func (f *Fetcher) Stats() Stats { return f.stats.snapshot() }

func (f *Fetcher) breaker(host string) *breaker {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.breakers[host]
	if !ok {
		// The breaker never holds a read back for more than half its retry
		// budget, so a read that starts once the registry is back gets its
		// probe through.
		maxCool := min(maxBreakerCooldown, f.opts.RetryTimeout/2)
		b = newBreaker(f.opts.BreakerThreshold, min(f.opts.BreakerCooldown, maxCool), maxCool)
		f.breakers[host] = b
	}
	return b
}

// Stats count a Blob's or a Fetcher's reads since it was made.
type Stats struct {
	// NetworkBytes are body bytes received from registries, including
	// bytes skipped in whole-blob answers and bytes of failed attempts.
	NetworkBytes int64
	// CacheBytes are bytes served from the cache, or from the chunks
	// held in memory (Options.HoldBytes).
	CacheBytes int64
	// Requests are GETs sent (each attempt counts; token requests do not).
	Requests int64
	// Retries are attempts after a failed one; Reauths re-authentications
	// after a 401 or 403.
	Retries, Reauths int64
	// WholeBlob counts 200 answers to a range request, whose leading bytes
	// were read and discarded.
	WholeBlob int64
	// Shared counts reads that joined an identical read already pending or
	// in flight; Coalesced counts reads sent as part of another read's GET.
	Shared, Coalesced int64
	// GapBytes are bytes received between coalesced reads and discarded
	// (Options.MaxGap); they count in NetworkBytes too.
	GapBytes int64
	// HeaderTime is the time GETs waited for their response headers,
	// summed over Requests; RequestTime the time from sending them to
	// the end of their bodies (divided by Requests: a GET's mean latency
	// and duration).
	HeaderTime, RequestTime time.Duration
}

type atomicInt = atomic.Int64

type counters struct {
	network, cache, requests, retries, reauths, whole, shared, coalesced, gap atomic.Int64
	header, request                                                           atomic.Int64 // nanoseconds
}

func (c *counters) snapshot() Stats {
	return Stats{
		NetworkBytes: c.network.Load(), CacheBytes: c.cache.Load(), Requests: c.requests.Load(),
		Retries: c.retries.Load(), Reauths: c.reauths.Load(), WholeBlob: c.whole.Load(),
		Shared: c.shared.Load(), Coalesced: c.coalesced.Load(), GapBytes: c.gap.Load(),
		HeaderTime: time.Duration(c.header.Load()), RequestTime: time.Duration(c.request.Load()),
	}
}

// count adds to a Blob's counters and its Fetcher's.
func (b *Blob) count(field func(*counters) *atomicInt, n int64) {
	field(&b.stats).Add(n)
	field(&b.f.stats).Add(n)
}

// itemKey identifies a read for sharing: reads of the same bytes of the
// same blob (through any Blob value) with the same check share a GET.
type itemKey struct {
	blob   digest.Digest
	off, n int64
	want   digest.Digest
}
