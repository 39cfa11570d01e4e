package store

import (
	"context"
	"encoding/binary"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/fcd-dev/fcd/api"
)

// Revisions and watches.
//
// The store's revision (v1/meta/revision, uint64 big-endian, absent = 0)
// counts committed changes: every write that changes a record takes the
// next revision in its own transaction, so revisions survive a restart and
// keep increasing across it.
//
// Watch delivers the changes committed after it is called, each once, in
// revision order. bbolt keeps no history, so a watch cannot start from an
// earlier revision: a consumer that needs the whole state reads it (Get,
// List) after starting its watch and applies events newer than what it
// read; after a restart it does the same. A watcher is never dropped:
// events queue for it in memory until it takes them or its context ends.

var keyRevision = []byte("revision")

// Revision returns the revision of the last committed change, 0 for a
// store never written.
func (s *Store) Revision(ctx context.Context) (uint64, error) {
	var rev uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		rev = readRevision(tx)
		return nil
	})
	return rev, err
}

func readRevision(tx *bolt.Tx) uint64 {
	v := bucket(tx, bucketMeta).Get(keyRevision)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// update runs fn in a write transaction; the events fn emits take the
// next revisions and reach the watchers once the transaction committed.
// Writers are serialized (as bbolt does anyway), so watchers see commit
// order.
func (s *Store) update(fn func(tx *bolt.Tx, emit func(api.Event) error) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var events []api.Event
	err := s.db.Update(func(tx *bolt.Tx) error {
		events = events[:0]
		rev := readRevision(tx)
		emit := func(e api.Event) error {
			rev++
			var b [8]byte
			binary.BigEndian.PutUint64(b[:], rev)
			if err := bucket(tx, bucketMeta).Put(keyRevision, b[:]); err != nil {
				return err
			}
			e.Revision = rev
			events = append(events, e)
			return nil
		}
		return fn(tx, emit)
	})
	if err == nil && len(events) > 0 {
		s.watchers.publish(events)
	}
	return err
}

// Watch returns the changes committed from now on, in revision order. The
// channel is closed when ctx ends or the store closes.
func (s *Store) Watch(ctx context.Context) <-chan api.Event {
	return s.watchers.add(ctx)
}

// watchers fans events out to every Watch.
type watchers struct {
	mu     sync.Mutex
	set    map[*watcher]struct{}
	closed bool
	done   chan struct{} // closed by close
	wg     sync.WaitGroup
}

type watcher struct {
	mu     sync.Mutex
	queue  []api.Event
	signal chan struct{} // capacity 1: events queued
}

func newWatchers() *watchers {
	return &watchers{set: map[*watcher]struct{}{}, done: make(chan struct{})}
}

func (ws *watchers) add(ctx context.Context) <-chan api.Event {
	out := make(chan api.Event)
	w := &watcher{signal: make(chan struct{}, 1)}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.closed {
		close(out)
		return out
	}
	ws.set[w] = struct{}{}
	ws.wg.Add(1)
	go ws.run(ctx, w, out)
	return out
}

// run delivers w's events to out until ctx ends or the store closes.
func (ws *watchers) run(ctx context.Context, w *watcher, out chan<- api.Event) {
	defer ws.wg.Done()
	defer close(out)
	defer func() {
		ws.mu.Lock()
		delete(ws.set, w)
		ws.mu.Unlock()
	}()
	for {
		select {
		case <-w.signal:
		case <-ctx.Done():
			return
		case <-ws.done:
			return
		}
		w.mu.Lock()
		batch := w.queue
		w.queue = nil
		w.mu.Unlock()
		for _, e := range batch {
			select {
			case out <- e:
			case <-ctx.Done():
				return
			case <-ws.done:
				return
			}
		}
	}
}

func (ws *watchers) publish(events []api.Event) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for w := range ws.set {
		w.mu.Lock()
		w.queue = append(w.queue, events...)
		w.mu.Unlock()
		select {
		case w.signal <- struct{}{}:
		default:
		}
	}
}

// close ends every watch and waits for their goroutines.
func (ws *watchers) close() {
	ws.mu.Lock()
	if !ws.closed {
		ws.closed = true
		close(ws.done)
	}
	ws.mu.Unlock()
	ws.wg.Wait()
}
