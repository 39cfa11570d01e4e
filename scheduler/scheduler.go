package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Instance is one running function instance as the scheduler sees it.
type Instance interface {
	// ID names the instance in logs.
	ID() string
	// Addr is where requests to the instance go.
	Addr() string
	// Done is closed when the instance died or became unhealthy; the
	// scheduler then evicts and stops it.
	Done() <-chan struct{}
	// Stop stops the instance and frees what it holds. The scheduler calls
	// it exactly once per instance, outside its locks, with a context
	// bounded by Options.StopTimeout.
	Stop(ctx context.Context) error
}

// Starter starts instances of a function. Start blocks until the instance
// is ready to serve, or fails; its error reaches the requests that waited
// for that start unchanged, so callers can classify it with errors.As.
// The context is cancelled by Close.
type Starter interface {
	Start(ctx context.Context, fn Function) (Instance, error)
}

// Function is the scheduler's view of a function.
type Function struct {
	// Name and Version identify the function's pool: each published
	// version of a function has instances of its own. Version is empty for
	// the function's latest (unpublished) configuration.
	Name    string
	Version string
	// Revision changes whenever the function's configuration changes;
	// instances of another revision drain.
	Revision string
	// MemoryMB counts against Options.MemoryBudgetMB per instance.
	MemoryMB int
	// Concurrency is how many requests one instance serves at once; values
	// below 1 mean 1.
	Concurrency int
	// MaxInstances caps the function's instances of the current revision,
	// ready or starting; 0 means no cap but the memory budget.
	MaxInstances int
	// IdleTimeout, when positive, replaces Options.IdleTimeout for this
	// function's instances.
	IdleTimeout time.Duration
	// ProvisionedOnly, when set, makes no on-demand starts: requests are
	// served by provisioned instances only (idle.go).
	ProvisionedOnly bool
	// SessionAffinity, when set, keeps the requests of one session key
	// (AcquireSession) on one instance (session.go); SessionIdleTimeout
	// ends an idle session, 0 meaning 30 minutes, and SessionTTL any
	// session that old, 0 meaning none.
	SessionAffinity    bool
	SessionIdleTimeout time.Duration
	SessionTTL         time.Duration
	// Config is passed to the Starter unchanged.
	Config any
}

func (f Function) concurrency() int {
	if f.Concurrency < 1 {
		return 1
	}
	return f.Concurrency
}

// Options configures a Scheduler. The zero value of each field is its
// default.
type Options struct {
	// IdleTimeout is how long an instance may sit without a lease before
	// it is stopped (provisioned instances excepted). Zero means 5 minutes.
	IdleTimeout time.Duration
	// MemoryBudgetMB caps the sum of Function.MemoryMB over all instances,
	// starting, running and stopping. Zero means no cap.
	MemoryBudgetMB int
	// MaxQueue caps the requests waiting for one function; past it Acquire
	// fails at once with ErrThrottled. Zero means 1000.
	MaxQueue int
	// QueueTimeout is how long a request may wait for a slot before
	// Acquire fails with ErrThrottled. Zero means 3 minutes, more than an
	// instance's 120 s start limit.
	QueueTimeout time.Duration
	// StopTimeout bounds one instance's Stop. Zero means 1 minute.
	StopTimeout time.Duration
	// ProvisionRetry is the first delay before retrying a failed start of
	// a provisioned instance; it doubles up to 5 minutes. Zero means 1 s.
	ProvisionRetry time.Duration
	// Logger receives the scheduler's records. Nil means silence.
	Logger *slog.Logger
	// Clock is the time source. Nil means the wall clock.
	Clock Clock
	// Stopping, when set, is told the ID of every instance the scheduler
	// takes out of service (evicted, drained, idle or at Close), once,
	// just before its Stop, outside the scheduler's locks; e.g. so the
	// proxy closes its idle connections to it. It must not block.
	Stopping func(instanceID string)
}

func (o Options) withDefaults() Options {
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 5 * time.Minute
	}
	if o.MaxQueue <= 0 {
		o.MaxQueue = 1000
	}
	if o.QueueTimeout <= 0 {
		o.QueueTimeout = 3 * time.Minute
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = time.Minute
	}
	if o.ProvisionRetry <= 0 {
		o.ProvisionRetry = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	return o
}

// maxProvisionBackoff caps the delay between failed provisioning starts.
const maxProvisionBackoff = 5 * time.Minute

// Scheduler places requests on instances. Create it with New; it is safe
// for concurrent use. Its methods never call the Starter or an Instance
// while holding a lock.
//
// Lock order: a pool's mu may be held while taking Scheduler.mu, never the
// other way round, and no two pools' locks are held at once.
type Scheduler struct {
	starter Starter
	opts    Options
	log     *slog.Logger
	clock   Clock

	// ctx bounds starts and the janitor; Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc
	// wg counts the janitor, every start in flight, every instance from
	// its start until its Stop returned, and every instance watcher.
	wg sync.WaitGroup

	// pools maps function names and versions to pools. It is copied on
	// write under mu, so Acquire finds a pool without a lock.
	pools atomic.Pointer[map[poolKey]*pool]
	// limits caps each function's leases over all its versions
	// (concurrency.go).
	limits limits

	mu      sync.Mutex
	closed  bool
	retired map[*pool]struct{} // removed pools with instances still draining
	memory  int                // MB held by starting, running and stopping instances
	freeing int                // MB of instances being stopped
	blocked map[*pool]struct{} // pools waiting for memory
	// nblocked is len(blocked), read without mu on the release path.
	nblocked atomic.Int32
}

// New returns a Scheduler that starts instances with starter. Its
// background work (idle reclaim, provisioning) runs until Close.
func New(starter Starter, opts Options) *Scheduler {
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Scheduler{
		starter: starter,
		opts:    opts,
		log:     opts.Logger,
		clock:   opts.Clock,
		ctx:     ctx,
		cancel:  cancel,
		retired: map[*pool]struct{}{},
		blocked: map[*pool]struct{}{},
	}
	s.pools.Store(&map[poolKey]*pool{})
	s.wg.Add(1)
	go s.janitor()
	return s
}

// Acquire returns a lease on an instance of fn: a free slot on a warm
// instance of the function's current revision (least loaded first) when
// there is one, else a slot on an instance started for the waiting
// requests. The first Acquire of a name creates its pool with fn; later
// calls use the revision last given to Update or SetProvisioned.
//
// Acquire waits while ctx allows, up to Options.QueueTimeout. Errors:
// ErrThrottled (queue full, queue deadline, or fn larger than the memory
// budget), ErrFunctionDeleted, ErrClosed, the Starter's error of the cold
// start the request waited for, and ctx.Err() when the caller went away.
func (s *Scheduler) Acquire(ctx context.Context, fn Function) (*Lease, error) {
	lim, err := s.limits.take(fn.Name)
	if err != nil {
		return nil, err
	}
	p := (*s.pools.Load())[keyOf(fn)]
	if p == nil {
		if p, err = s.pool(fn); err != nil {
			lim.put()
			return nil, err
		}
	}
	l, err := p.acquire(ctx)
	if err != nil {
		lim.put()
		return nil, err
	}
	l.lim = lim
	return l, nil
}

// poolKey identifies a pool: a function and one of its versions.
type poolKey struct{ name, version string }

func keyOf(fn Function) poolKey { return poolKey{fn.Name, fn.Version} }

// pool returns the pool of fn, creating it.
func (s *Scheduler) pool(fn Function) (*pool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	old := *s.pools.Load()
	if p := old[keyOf(fn)]; p != nil {
		return p, nil
	}
	pools := make(map[poolKey]*pool, len(old)+1)
	for k, v := range old {
		pools[k] = v
	}
	p := newPool(s, fn)
	pools[keyOf(fn)] = p
	s.pools.Store(&pools)
	return p, nil
}

// lookup returns the pool of a function's version or nil.
func (s *Scheduler) lookup(name, version string) *pool {
	return (*s.pools.Load())[poolKey{name, version}]
}

// allPools returns the live pools.
func (s *Scheduler) allPools() []*pool {
	m := *s.pools.Load()
	out := make([]*pool, 0, len(m))
	for _, p := range m {
		out = append(out, p)
	}
	return out
}

// Update tells the scheduler fn's configuration changed: when the revision
// differs, instances of the old one drain (idle ones stop now, busy ones
// after their last lease), starts of the old one still in flight are
// stopped when they finish, and new requests go to instances of fn.
func (s *Scheduler) Update(fn Function) {
	// The pool is created if need be: a request that read the function
	// before the update may create it later, and must find the new
	// revision, not pin the old one.
	if p, err := s.pool(fn); err == nil {
		p.update(fn)
	}
}

// Remove drains the named function, every version of it: requests
// waiting for it fail with ErrFunctionDeleted, idle instances stop now,
// busy ones when their last lease is released. A later Acquire of the
// name starts afresh. Its concurrency limit stays until changed.
func (s *Scheduler) Remove(name string) {
	s.remove(func(k poolKey) bool { return k.name == name })
}

// RemoveVersion drains one published version of a function, as Remove
// does the whole function.
func (s *Scheduler) RemoveVersion(name, version string) {
	s.remove(func(k poolKey) bool { return k == poolKey{name, version} })
}

func (s *Scheduler) remove(match func(poolKey) bool) {
	s.mu.Lock()
	old := *s.pools.Load()
	var gone []*pool
	pools := make(map[poolKey]*pool, len(old))
	for k, v := range old {
		if match(k) {
			gone = append(gone, v)
			s.retired[v] = struct{}{}
		} else {
			pools[k] = v
		}
	}
	if len(gone) > 0 {
		s.pools.Store(&pools)
	}
	s.mu.Unlock()
	for _, p := range gone {
		p.shut(ErrFunctionDeleted)
		s.forgetIfDrained(p)
	}
}

// forgetIfDrained drops a removed pool once its last instance stopped.
func (s *Scheduler) forgetIfDrained(p *pool) {
	if !p.drained() {
		return
	}
	s.mu.Lock()
	delete(s.retired, p)
	s.mu.Unlock()
}

// SetProvisioned keeps target instances of fn warm, starting them in the
// background and retrying failed starts with back-off; fn also becomes
// the current revision as with Update. Instances beyond a lowered target
// stop once idle for Options.IdleTimeout. A target of 0 returns the
// function to on-demand instances only. It does nothing after Close.
func (s *Scheduler) SetProvisioned(fn Function, target int) {
	p, err := s.pool(fn)
	if err != nil {
		return
	}
	p.setProvisioned(fn, target)
	p.provision(s.clock.Now())
}

// Provisioned returns the provisioned target of the named function's
// latest configuration and how many ready instances of its current
// revision it has.
func (s *Scheduler) Provisioned(name string) (target, current int) {
	return s.ProvisionedVersion(name, "")
}

// ProvisionedVersion is Provisioned for one version of a function ("":
// the latest configuration).
func (s *Scheduler) ProvisionedVersion(name, version string) (target, current int) {
	if p := s.lookup(name, version); p != nil {
		return p.provisionedStatus()
	}
	return 0, 0
}

// StartError returns the error of the named function's last cold start
// of its current configuration when that start failed, else nil; e.g. why
// its provisioned instances do not run.
func (s *Scheduler) StartError(name string) error {
	if p := s.lookup(name, ""); p != nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.lastStartErr
	}
	return nil
}

// Close shuts the scheduler down gracefully: waiting requests fail with
// ErrClosed, starts in flight are cancelled, idle instances stop at once
// and busy ones when their lease is released. When ctx ends first, the
// busy instances are stopped too and Close returns ctx's error without
// waiting for those stops. Acquire fails with ErrClosed afterwards; a
// second Close returns nil at once.
func (s *Scheduler) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	pools := s.allPools()
	for p := range s.retired {
		pools = append(pools, p)
	}
	s.pools.Store(&map[poolKey]*pool{})
	s.mu.Unlock()

	for _, p := range pools {
		p.shut(ErrClosed)
	}
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	busy := 0
	for _, p := range pools {
		busy += p.stopBusy()
	}
	return fmt.Errorf("close scheduler: stopped %d busy instances: %w", busy, ctx.Err())
}

// janitor stops idle instances and keeps provisioned targets, ticking a
// few times per IdleTimeout.
func (s *Scheduler) janitor() {
	defer s.wg.Done()
	t := s.clock.NewTicker(min(max(s.opts.IdleTimeout/4, 10*time.Millisecond), time.Second))
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C():
			for _, p := range s.allPools() {
				p.reapIdle(now)
				p.reapSessions(now)
				p.provision(now)
			}
		}
	}
}
