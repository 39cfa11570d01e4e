package async

import "time"

// Policy is how long events wait between tries. The zero value of each
// field is its default.
type Policy struct {
	// RetryBase is the wait after the first failed attempt; it doubles
	// with each further one. Zero means 1 s.
	RetryBase time.Duration
	// RetryMax caps the wait between attempts. Zero means 5 minutes.
	RetryMax time.Duration
	// ThrottleBase is the wait after the first throttled try; it doubles
	// with each consecutive one. Zero means 0.5 s, FC's value.
	ThrottleBase time.Duration
	// ThrottleMax caps the wait after throttling. Zero means 1 minute.
	ThrottleMax time.Duration
}

func (p Policy) withDefaults() Policy {
	if p.RetryBase <= 0 {
		p.RetryBase = time.Second
	}
	if p.RetryMax <= 0 {
		p.RetryMax = 5 * time.Minute
	}
	if p.ThrottleBase <= 0 {
		p.ThrottleBase = 500 * time.Millisecond
	}
	if p.ThrottleMax <= 0 {
		p.ThrottleMax = time.Minute
	}
	return p
}

// retryAfter is the wait after attempt n (1-based) failed.
func (p Policy) retryAfter(n int) time.Duration { return backoff(p.RetryBase, p.RetryMax, n) }

// throttleAfter is the wait after the n-th consecutive throttled try.
func (p Policy) throttleAfter(n int) time.Duration { return backoff(p.ThrottleBase, p.ThrottleMax, n) }

func backoff(base, max time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}
