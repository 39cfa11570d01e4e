package lazyfs

import (
	"context"
	"sync"

	"github.com/fcd-dev/fcd/puller/remote"
)

// flights runs one fetch per key for any number of concurrent readers. The
// fetch runs under its own context, cancelled when every reader waiting
// for it has given up (a FUSE INTERRUPT cancels the reader's context), so
// one impatient reader never fails the others and an abandoned fetch does
// not run on.
//
// A reader of higher priority than the running fetch does not wait behind
// it: it starts its own fetch at its priority, which takes over the key
// (later readers join it), while the slower one finishes for its own
// waiters. The fetcher below shares the requests both make and raises the
// pending ones to the higher priority, so an on-demand read never waits
// in the queue behind the prefetch it would otherwise have joined.
type flights[K comparable] struct {
	mu sync.Mutex
	m  map[K]*flight
}

type flight struct {
	done    chan struct{}
	val     []byte
	err     error
	waiters int
	prio    remote.Priority
	cancel  context.CancelFunc
}

// do returns fetch's result for key, starting it unless it already runs.
// fetch's context carries ctx's values but not its cancellation; fetch
// runs at priority prio, or joins a fetch of at least that priority.
func (fs *flights[K]) do(ctx context.Context, key K, prio remote.Priority, fetch func(context.Context) ([]byte, error)) ([]byte, error) {
	fs.mu.Lock()
	if fs.m == nil {
		fs.m = make(map[K]*flight)
	}
	f, ok := fs.m[key]
	if !ok || f.prio < prio {
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight{done: make(chan struct{}), prio: prio, cancel: cancel}
		fs.m[key] = f
		go func() {
			defer cancel()
			f.val, f.err = fetch(fctx)
			fs.mu.Lock()
			if fs.m[key] == f {
				delete(fs.m, key)
			}
			fs.mu.Unlock()
			close(f.done)
		}()
	}
	f.waiters++
	fs.mu.Unlock()

	select {
	case <-f.done:
		return f.val, f.err
	case <-ctx.Done():
		fs.mu.Lock()
		if f.waiters--; f.waiters == 0 {
			f.cancel()
			if fs.m[key] == f {
				delete(fs.m, key) // a new reader starts afresh
			}
		}
		fs.mu.Unlock()
		return nil, ctx.Err()
	}
}
