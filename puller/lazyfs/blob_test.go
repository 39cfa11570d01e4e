package lazyfs

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"

	"github.com/fcd-dev/fcd/puller/remote"
)

// memBlob is a Blob over bytes in memory, standing in for puller/remote's
// fetcher: it checks ReadChunk's digest as the fetcher does, counts
// requests, fails every read while failing is set, and, when hold is not
// nil, blocks each read until its context ends, telling held about it
// first.
type memBlob struct {
	data     []byte
	requests atomic.Int64
	fetched  atomic.Int64

	mu      sync.Mutex
	failing error
	held    chan context.Context
}

var _ Blob = (*memBlob)(nil)

func (b *memBlob) setFailing(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failing = err
}

func (b *memBlob) ReadRange(ctx context.Context, off, n int64, prio remote.Priority) ([]byte, error) {
	b.requests.Add(1)
	b.mu.Lock()
	failing, held := b.failing, b.held
	b.mu.Unlock()
	if held != nil {
		held <- ctx
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if failing != nil {
		return nil, failing
	}
	if off < 0 || n < 0 || off+n > int64(len(b.data)) {
		return nil, fmt.Errorf("range %d+%d outside blob of %d bytes", off, n, len(b.data))
	}
	b.fetched.Add(n)
	return append([]byte(nil), b.data[off:off+n]...), nil
}

func (b *memBlob) ReadChunk(ctx context.Context, off, n int64, want digest.Digest, prio remote.Priority) ([]byte, error) {
	p, err := b.ReadRange(ctx, off, n, prio)
	if err != nil {
		return nil, err
	}
	if got := digest.FromBytes(p); got != want {
		return nil, fmt.Errorf("chunk %d+%d is %s, want %s", off, n, got, want)
	}
	return p, nil
}
