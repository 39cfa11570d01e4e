package instance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// HealthCheck is an HTTP readiness and liveness check, Function Compute's
// customContainerConfig.healthCheckConfig. The zero value of each field
// means FC's default.
type HealthCheck struct {
	// HTTPGetURL is the path checked with GET, e.g. "/ready"; required.
	HTTPGetURL string
	// InitialDelay is waited before the first check; 0 means none.
	InitialDelay time.Duration
	// Period is the time between checks; 0 means 3 s.
	Period time.Duration
	// Timeout bounds one check; 0 means 1 s.
	Timeout time.Duration
	// FailureThreshold consecutive failures make a warm instance
	// unhealthy; 0 means 3.
	FailureThreshold int
	// SuccessThreshold consecutive successes make a starting instance
	// ready; 0 means 1.
	SuccessThreshold int
}

func (h HealthCheck) withDefaults() HealthCheck {
	if h.Period == 0 {
		h.Period = 3 * time.Second
	}
	if h.Timeout == 0 {
		h.Timeout = time.Second
	}
	if h.FailureThreshold == 0 {
		h.FailureThreshold = 3
	}
	if h.SuccessThreshold == 0 {
		h.SuccessThreshold = 1
	}
	if !strings.HasPrefix(h.HTTPGetURL, "/") {
		h.HTTPGetURL = "/" + h.HTTPGetURL
	}
	return h
}

// Probe pacing: a server that starts in tens of milliseconds is seen
// within probeFastStep while the start is young (a refused dial to a local
// namespace costs microseconds); after probeFastFor the pause doubles up
// to probeMaxStep, for servers that take seconds. A server is seen ready
// at most probeMaxStep late, half that on average: a refused dial costs
// ~25 µs of CPU here, so 50 a second cost about 0.1% of a core, while a
// 100 ms step made every slow start ~50 ms later than it needed to be.
const (
	probeFastStep = time.Millisecond
	probeFastFor  = 50 * time.Millisecond
	probeMaxStep  = 20 * time.Millisecond
	// hopelessEvery spaces probeTCP's questions to hopeless.
	hopelessEvery = time.Second
)

// probeDelay is the pause after a failed probe made elapsed after the
// first one, following a pause of prev.
func probeDelay(elapsed, prev time.Duration) time.Duration {
	if elapsed < probeFastFor {
		return probeFastStep
	}
	return min(max(2*prev, 5*time.Millisecond), probeMaxStep)
}

// probeTCP dials addr, quickly at first and then with a back-off (see
// probeDelay), until it accepts, exited is closed, or ctx ends. It returns
// the last dial error on failure. hopeless, when non-nil, is asked after a
// refused dial past probeFastFor, at most every hopelessEvery, whether the
// server can never be reached (it listens on loopback only); a non-empty
// answer ends the probe at once with the dial error and that explanation.
func probeTCP(ctx context.Context, addr string, exited <-chan struct{}, hopeless func() string) error {
	var d net.Dialer
	var last error
	var asked time.Time // when hopeless was last asked
	start := time.Now()
	for delay := time.Duration(0); ; {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := d.DialContext(dctx, "tcp", addr)
		cancel()
		if err == nil {
			c.Close()
			return nil
		}
		if ctx.Err() == nil {
			last = err
		}
		// hopeless reads the namespace's socket tables, which costs
		// ~10 ms of kernel time here: /proc/PID/net/tcp walks the whole
		// host's connection hash, however few sockets the namespace has.
		// It waits for the fast phase to end (a quick server is up by
		// then) and runs at most every hopelessEvery, not after every
		// refused dial: asked after every one (then every 100 ms), it
		// took ~1 CPU-s over a 10 s start.
		if hopeless != nil && errors.Is(err, syscall.ECONNREFUSED) {
			if now := time.Now(); now.Sub(start) >= probeFastFor && now.Sub(asked) >= hopelessEvery {
				asked = now
				if why := hopeless(); why != "" {
					return fmt.Errorf("%w (%s)", err, why)
				}
			}
		}
		delay = probeDelay(time.Since(start), delay)
		if err := pause(ctx, exited, delay, last); err != nil || isClosed(exited) {
			return err
		}
	}
}

// pause waits d between probes. It returns last (or ctx's error when
// there is none yet) if the process exits or ctx ends first, nil after d;
// callers also check exited, since last may be nil.
func pause(ctx context.Context, exited <-chan struct{}, d time.Duration, last error) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-exited:
		return last
	case <-ctx.Done():
		if last == nil {
			return ctx.Err()
		}
		return last
	case <-t.C:
		return nil
	}
}

// checkHTTP runs one health check.
func checkHTTP(ctx context.Context, client *http.Client, addr string, h HealthCheck) error {
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+h.HTTPGetURL, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("health check GET %s: status %d", h.HTTPGetURL, resp.StatusCode)
	}
	return nil
}

// probeHTTP runs h until SuccessThreshold consecutive checks pass, exited
// is closed, or ctx ends; it returns the last check error on failure.
func probeHTTP(ctx context.Context, client *http.Client, addr string, h HealthCheck, exited <-chan struct{}) error {
	var last error
	wait := h.InitialDelay
	start, fast := time.Now().Add(wait), time.Duration(0)
	for ok := 0; ok < h.SuccessThreshold; {
		if err := pause(ctx, exited, wait, last); err != nil || isClosed(exited) {
			return err
		}
		wait = h.Period
		if last = checkHTTP(ctx, client, addr, h); last != nil {
			ok = 0
			// Until the server first answers, retry faster than Period
			// so a ready server is noticed promptly.
			fast = probeDelay(time.Since(start), fast)
			wait = min(h.Period, fast)
			continue
		}
		ok++
	}
	return nil
}

// hook calls one lifecycle hook (POST /initialize, GET /pre-stop) and
// wants 200.
func hook(ctx context.Context, client *http.Client, addr, method, path string, header http.Header, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, nil)
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("x-fc-control-path", path)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: status %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}
