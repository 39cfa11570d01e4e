package instance

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"time"
)

// attachment is a network namespace attached to fcd's bridge: what
// network.attach made under id.
type attachment struct {
	id   string // the namespace's directory and CNI container ID
	path string
	ip   netip.Addr
}

// netPool keeps up to size namespaces attached ahead of time, so a start
// takes one instead of waiting for CNI (about a quarter of a warm start).
// Each namespace serves one instance and is detached with it; none is
// ever handed out twice, so nothing one instance changed in its namespace
// reaches another. Pooled namespaces are named "pool-<random>" and live
// beside the instances' in nsDir, where Cleanup finds them after a crash.
//
// run refills the pool until its context ends; drain detaches what is
// left and must be called after run returned. Lock order: filling, mu.
type netPool struct {
	net  *network
	size int
	log  *slog.Logger
	kick chan struct{} // buffered 1: refill wanted

	filling sync.Mutex // held by fill
	mu      sync.Mutex // guards ready
	ready   []attachment
}

func newNetPool(n *network, size int, log *slog.Logger) *netPool {
	return &netPool{net: n, size: size, log: log, kick: make(chan struct{}, 1)}
}

// take returns a pooled namespace, or false when the pool is empty. A
// namespace that vanished meanwhile (a Cleanup by another Manager of the
// same name) is released and skipped.
func (p *netPool) take(ctx context.Context) (attachment, bool) {
	for {
		a, ok := p.pop()
		if !ok {
			return attachment{}, false
		}
		if _, err := os.Stat(a.path); err == nil {
			return a, true
		}
		if err := p.net.detach(ctx, a.id); err != nil {
			p.log.Warn("release vanished network namespace", "id", a.id, "err", err)
		}
	}
}

func (p *netPool) pop() (attachment, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ready) == 0 {
		return attachment{}, false
	}
	a := p.ready[len(p.ready)-1]
	p.ready = p.ready[:len(p.ready)-1]
	return a, true
}

// refill asks run to top the pool up. Starts call it once they are ready
// rather than on take, so that the refill does not compete for the CPU
// with the start that emptied the pool.
func (p *netPool) refill() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *netPool) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ready)
}

// poolRetry is the pause after a failed attach before the pool tries
// again; starts attach for themselves meanwhile.
const poolRetry = time.Second

// run fills the pool, and again on each refill, until ctx ends.
func (p *netPool) run(ctx context.Context) {
	runPool(ctx, p.kick, p.fill, p.log, "prepare network namespace")
}

// runPool runs fill, and again whenever kick receives, until ctx ends. A
// failed fill is logged with msg and tried again after poolRetry.
func runPool(ctx context.Context, kick <-chan struct{}, fill func(context.Context) error, log *slog.Logger, msg string) {
	for {
		if err := fill(ctx); err != nil && ctx.Err() == nil {
			log.Warn(msg, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(poolRetry):
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-kick:
		}
	}
}

// fill attaches namespaces until the pool holds size of them, and
// returns the first error. One fill runs at a time.
func (p *netPool) fill(ctx context.Context) error {
	p.filling.Lock()
	defer p.filling.Unlock()
	for p.len() < p.size {
		if err := ctx.Err(); err != nil {
			return err
		}
		id := "pool-" + newID()
		path, ip, err := p.net.attach(ctx, id)
		if err != nil {
			return err
		}
		p.mu.Lock()
		p.ready = append(p.ready, attachment{id: id, path: path, ip: ip})
		p.mu.Unlock()
	}
	return nil
}

// drain detaches every pooled namespace.
func (p *netPool) drain(ctx context.Context) error {
	p.mu.Lock()
	ready := p.ready
	p.ready = nil
	p.mu.Unlock()
	var errs []error
	for _, a := range ready {
		errs = append(errs, p.net.detach(ctx, a.id))
	}
	return errors.Join(errs...)
}
