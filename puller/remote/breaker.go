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

	mu         sync.Mutex
	failures   int
	cooldown   time.Duration
	openUntil  time.Time
	probeUntil time.Time // a probe is out; others wait until then
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
	if d := b.probeUntil.Sub(now); d > 0 {
		return d
	}
	// A probe that neither succeeds nor fails (cancelled) frees the way
	// for another after a cooldown.
	b.probeUntil = now.Add(b.cooldown)
	return 0
}

func (b *breaker) success() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures, b.probeUntil, b.cooldown = 0, time.Time{}, b.baseCooldown
}

func (b *breaker) failure(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures++
	if b.failures < b.threshold {
		return
	}
	probing := !b.probeUntil.IsZero()
	if probing || b.failures == b.threshold {
		b.openUntil = now.Add(b.cooldown)
		if probing {
			b.cooldown = min(2*b.cooldown, b.maxCool)
		}
		b.probeUntil = time.Time{}
	}
}
