package scheduler

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Instance is one running function instance as the scheduler sees it.
type Instance interface {
	ID() string
	// Addr is where requests to the instance go.
	Addr() string
	// Done is closed when the instance died or became unhealthy; the
	// scheduler then evicts and stops it.
	Done() <-chan struct{}
	// Stop stops the instance and frees what it holds. It is called once
	// per instance, outside the scheduler's locks.
	Stop(ctx context.Context) error
}

// Starter starts instances of a function. Start blocks until the instance
// is ready to serve, or fails.
type Starter interface {
	Start(ctx context.Context, fn Function) (Instance, error)
}

// Function is the scheduler's view of a function.
type Function struct {
	Name string
	// Revision changes whenever the function's configuration changes;
	// instances of an older revision drain.
	Revision string
	// MemoryMB counts against Options.MemoryBudgetMB per instance.
	MemoryMB int
	// Concurrency is how many requests one instance serves at once; values
	// below 1 mean 1.
	Concurrency int
	// MaxInstances caps the function's instances; 0 means no cap but the
	// memory budget.
	MaxInstances int
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
	// MemoryBudgetMB caps the sum of MemoryMB of all instances, running
	// and starting. Zero means no cap.
	MemoryBudgetMB int
	// MaxQueue caps the requests waiting for one function. Zero means 1000.
	MaxQueue int
	// QueueTimeout is how long a request may wait for a slot. Zero means
	// 3 minutes, more than an instance's 120 s start limit.
	QueueTimeout time.Duration
	// StopTimeout bounds one instance's Stop. Zero means 1 minute.
	StopTimeout time.Duration
	// ProvisionRetry is the first delay before retrying a failed start of
	// a provisioned instance; it doubles up to 5 minutes. Zero means 1 s.
	ProvisionRetry time.Duration
	// Logger receives the scheduler's records. Nil means silence.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 5 * time.Minute
	}
	if o.MaxQueue == 0 {
		o.MaxQueue = 1000
	}
	if o.QueueTimeout == 0 {
		o.QueueTimeout = 3 * time.Minute
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = time.Minute
	}
	if o.ProvisionRetry == 0 {
		o.ProvisionRetry = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Scheduler places requests on instances. Create it with New; it is safe
// for concurrent use.
type Scheduler struct {
	starter Starter
	opts    Options
	log     *slog.Logger

	// ctx bounds starts and instance watchers; Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex // guards pools, memUsed, closed
	pools  map[string]*pool
	memory int
	closed bool
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
		ctx:     ctx,
		cancel:  cancel,
		pools:   map[string]*pool{},
	}
	s.wg.Add(1)
	go s.janitor()
	return s
}

// Acquire returns a lease on an instance of fn: a free slot on a warm
// instance (least loaded first) when there is one, else a slot on an
// instance started for the waiting requests. It waits while ctx allows, up
// to Options.QueueTimeout. Errors: ErrThrottled, ErrFunctionDeleted,
// ErrClosed, the error of the cold start the request waited for, and
// ctx's error.
func (s *Scheduler) Acquire(ctx context.Context, fn Function) (*Lease, error) {
	p, err := s.pool(fn)
	if err != nil {
		return nil, err
	}
	return p.acquire(ctx, fn)
}

// pool returns the pool of fn, creating it.
func (s *Scheduler) pool(fn Function) (*pool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	p := s.pools[fn.Name]
	if p == nil {
		p = newPool(s, fn)
		s.pools[fn.Name] = p
	}
	return p, nil
}

// Update tells the scheduler fn's configuration changed: instances of
// other revisions drain (idle ones stop now, busy ones after their last
// lease), and new requests go to instances of fn. Unknown functions are
// ignored.
func (s *Scheduler) Update(fn Function) {
	s.mu.Lock()
	p := s.pools[fn.Name]
	s.mu.Unlock()
	if p != nil {
		p.update(fn)
	}
}

// Remove drains and stops every instance of the named function; requests
// waiting for it fail with ErrFunctionDeleted.
func (s *Scheduler) Remove(name string) {
	s.mu.Lock()
	p := s.pools[name]
	delete(s.pools, name)
	s.mu.Unlock()
	if p != nil {
		p.remove()
	}
}

// SetProvisioned keeps target instances of fn warm, starting them in the
// background; 0 returns the function to on-demand instances only.
func (s *Scheduler) SetProvisioned(fn Function, target int) {
	p, err := s.pool(fn)
	if err != nil {
		return
	}
	p.setProvisioned(fn, target)
	s.wake(p)
}

// Provisioned returns the provisioned target of the named function and
// how many ready instances it has.
func (s *Scheduler) Provisioned(name string) (target, current int) {
	s.mu.Lock()
	p := s.pools[name]
	s.mu.Unlock()
	if p == nil {
		return 0, 0
	}
	return p.provisionedStatus()
}

// Close stops every instance and background goroutine and waits for them.
// Requests waiting in Acquire fail with ErrClosed.
func (s *Scheduler) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	pools := s.pools
	s.pools = map[string]*pool{}
	s.mu.Unlock()
	for _, p := range pools {
		p.close()
	}
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// reserve takes mb from the memory budget, reporting whether it fit.
func (s *Scheduler) reserve(mb int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.MemoryBudgetMB > 0 && s.memory+mb > s.opts.MemoryBudgetMB {
		return false
	}
	s.memory += mb
	return true
}

// unreserve returns mb to the budget and lets pools waiting for memory
// try again.
func (s *Scheduler) unreserve(mb int) {
	s.mu.Lock()
	s.memory -= mb
	var waiting []*pool
	if s.opts.MemoryBudgetMB > 0 {
		for _, p := range s.pools {
			waiting = append(waiting, p)
		}
	}
	s.mu.Unlock()
	for _, p := range waiting {
		p.schedule()
	}
}

// reclaimIdle stops one idle, unprovisioned instance of any pool other
// than except to make room in the memory budget, the one idle longest.
// It reports whether it found one.
func (s *Scheduler) reclaimIdle(except *pool) bool {
	s.mu.Lock()
	pools := make([]*pool, 0, len(s.pools))
	for _, p := range s.pools {
		if p != except {
			pools = append(pools, p)
		}
	}
	s.mu.Unlock()
	var best *pool
	var bestAt time.Time
	for _, p := range pools {
		if at, ok := p.oldestSpareIdle(); ok && (best == nil || at.Before(bestAt)) {
			best, bestAt = p, at
		}
	}
	return best != nil && best.stopSpareIdle(bestAt)
}

// stopInstance stops in outside any lock and returns its memory.
func (s *Scheduler) stopInstance(in *inst) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), s.opts.StopTimeout)
		defer cancel()
		if err := in.Stop(ctx); err != nil {
			s.log.Warn("stop instance", "function", in.fn.Name, "instance", in.ID(), "error", err)
		}
		s.unreserve(in.fn.MemoryMB)
	}()
}

// wake runs a pool's provisioning now rather than at the next tick.
func (s *Scheduler) wake(p *pool) { p.provision(time.Now()) }

// janitor stops idle instances and keeps provisioned targets, ticking a
// few times per IdleTimeout.
func (s *Scheduler) janitor() {
	defer s.wg.Done()
	tick := min(max(s.opts.IdleTimeout/4, 10*time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			s.mu.Lock()
			pools := make([]*pool, 0, len(s.pools))
			for _, p := range s.pools {
				pools = append(pools, p)
			}
			s.mu.Unlock()
			for _, p := range pools {
				p.reapIdle(now)
				p.provision(now)
			}
		}
	}
}
