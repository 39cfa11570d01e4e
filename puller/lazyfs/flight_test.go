package lazyfs

import (
	"context"
	"runtime"
	"testing"

	"github.com/fcd-dev/fcd/puller/remote"
)

// TestFlightPriority: a reader of higher priority than a running fetch
// starts its own rather than wait behind it; one of the same or lower
// priority joins.
func TestFlightPriority(t *testing.T) {
	var fs flights[int]
	ctx := context.Background()
	release := make(chan struct{})
	started := make(chan struct{})
	prefetch := make(chan []byte, 1)
	go func() {
		b, _ := fs.do(ctx, 1, remote.Prefetch, func(context.Context) ([]byte, error) {
			close(started)
			<-release
			return []byte("prefetch"), nil
		})
		prefetch <- b
	}()
	<-started
	joined := make(chan []byte, 1)
	go func() {
		b, _ := fs.do(ctx, 1, remote.Background, func(context.Context) ([]byte, error) {
			t.Error("a background reader started its own fetch instead of joining the prefetch")
			return nil, nil
		})
		joined <- b
	}()
	for waiters(&fs, 1) < 2 {
		runtime.Gosched() // until the background reader has joined
	}
	b, err := fs.do(ctx, 1, remote.OnDemand, func(context.Context) ([]byte, error) { return []byte("on-demand"), nil })
	if err != nil || string(b) != "on-demand" {
		t.Fatalf("on-demand read got %q, %v while the prefetch was held; want its own fetch", b, err)
	}
	close(release)
	if got := string(<-prefetch); got != "prefetch" {
		t.Errorf("prefetch reader got %q", got)
	}
	if got := string(<-joined); got != "prefetch" {
		t.Errorf("background reader got %q", got)
	}
}

func waiters(fs *flights[int], key int) int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f, ok := fs.m[key]; ok {
		return f.waiters
	}
	return 0
}
