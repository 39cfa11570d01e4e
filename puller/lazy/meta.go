package lazy

import (
	"container/list"
	"context"
	"errors"
	"sync"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/singleflight"
)

// DefaultMetadataBytes is the memory Options.MetadataBytes defaults to.
const DefaultMetadataBytes = 32 << 20

// metadata shares the small blobs Prepare reads whole (manifests by
// digest, configs, layer indexes) among concurrent and later Prepare
// calls: one fetch per blob however many calls prepare the image at once
// (the image.Images contract's shared pull), and none while the blob is
// still kept. Blobs are verified before they are kept and keyed by
// repository and digest, so a call only ever gets bytes of the repository
// whose manifest it has just resolved with its own credentials. Kept
// blobs are bounded in bytes, least recently used dropped first; a blob
// over a quarter of the bound is shared in flight only.
type metadata struct {
	group singleflight.Group

	mu    sync.Mutex
	max   int64
	size  int64
	lru   *list.List // of *metaEntry, most recently used first
	byKey map[string]*list.Element
}

type metaEntry struct {
	key string
	b   []byte
}

func newMetadata(max int64) *metadata {
	return &metadata{max: max, lru: list.New(), byKey: map[string]*list.Element{}}
}

// read returns the blob d of repo, kept or fetched by fetch, which must
// verify what it returns. Calls for one blob at once share one fetch. A
// call whose fetch was run by another call that gave up (its context
// ended) fetches again under its own context.
func (m *metadata) read(ctx context.Context, repo string, d digest.Digest, fetch func(context.Context) ([]byte, error)) ([]byte, error) {
	key := repo + "@" + d.String()
	for {
		if b, ok := m.get(key); ok {
			return b, nil
		}
		led := false
		v, err, _ := m.group.Do(key, func() (any, error) {
			led = true
			if b, ok := m.get(key); ok {
				return b, nil
			}
			b, err := fetch(ctx)
			if err != nil {
				return nil, err
			}
			m.put(key, b)
			return b, nil
		})
		if err != nil && !led && ctx.Err() == nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
			continue // the call that fetched gave up; this one has not
		}
		if err != nil {
			return nil, err
		}
		return v.([]byte), nil
	}
}

func (m *metadata) get(key string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.byKey[key]
	if !ok {
		return nil, false
	}
	m.lru.MoveToFront(e)
	return e.Value.(*metaEntry).b, true
}

func (m *metadata) put(key string, b []byte) {
	n := int64(len(b))
	if n > m.max/4 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.byKey[key]; ok {
		return
	}
	m.byKey[key] = m.lru.PushFront(&metaEntry{key: key, b: b})
	m.size += n
	for m.size > m.max {
		old := m.lru.Remove(m.lru.Back()).(*metaEntry)
		delete(m.byKey, old.key)
		m.size -= int64(len(old.b))
	}
}
