package remote

import (
	"sync"
	"time"
)

// breaker is one registry host's circuit breaker. After threshold
// consecutive failed requests it opens for a cooldown (doubling, up to
// maxCooldown, while failures continue), during which no request is sent;
// then one probe request goes through, and its success closes it.
type breaker struct {
	threshold             int
	baseCooldown, maxCool time.Duration

	mu        sync.Mutex
	failures  int
	cooldown  time.Duration
	openUntil time.Time
	probing   bool
}

func newBreaker(threshold int, cooldown, maxCooldown time.Duration) *breaker {
	return &breaker{threshold: threshold, baseCooldown: cooldown, maxCool: maxCooldown, cooldown: cooldown}
}

// wait returns how long a request must wait before it may be sent; zero
// means send now (and, when the breaker is half open, this request is
// the probe).
func (b *breaker) wait(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failures < b.threshold {
		return 0
	}
	if d := b.openUntil.Sub(now); d > 0 {
		return d
	}
	if b.probing {
		return b.baseCooldown
	}
	b.probing = true
	return 0
}

// open reports whether the breaker is open (requests are held back).
func (b *breaker) open() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failures >= b.threshold
}

func (b *breaker) success() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures, b.probing, b.cooldown = 0, false, b.baseCooldown
}

func (b *breaker) failure(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures++
	if b.failures < b.threshold {
		return
	}
	if b.probing || b.failures == b.threshold {
		b.openUntil = now.Add(b.cooldown)
		if b.probing {
			b.cooldown = min(2*b.cooldown, b.maxCool)
		}
		b.probing = false
	}
}
