// Package cache is the host's content-addressed store of image blobs and
// chunks, shared by every function on the host. The lazy filesystem puts
// the bytes it fetches here and reads them back; billing asks it whether an
// image was already here. It owns the byte budget, least-recently-used
// eviction and integrity checks. It does no network I/O: whoever fetches
// (puller) hands it a reader.
//
// # Vocabulary
//
// An entry is one blob, named by its sha256 digest, immutable once stored.
// An entry is pinned while at least one Reader returned by Open holds it;
// eviction never removes a pinned entry. The budget is Options.MaxBytes,
// the sum of entry sizes the store tries to stay under.
//
// # On-disk layout
//
//	<dir>/lock              flock(2)ed by the one Cache using <dir>
//	<dir>/sha256/<hex>      one file per entry, the blob's bytes, mode 0444;
//	                        its mtime is the entry's last access
//	<dir>/tmp/<hex>-<rand>  Puts in progress
//
// Nothing else is kept: the index (size and last access of each entry) is
// in memory and rebuilt from <dir>/sha256 by Open, ordered by mtime, so a
// restart keeps the eviction order. Files in <dir>/sha256 whose names are
// not 64 lowercase hex digits are ignored (and logged).
//
// # Lifecycle of an entry
//
//  1. Put streams the blob into a temp file in <dir>/tmp, hashing as it
//     writes. When the reader ends the digest is compared; on a mismatch,
//     an error or a cancelled context the temp file is removed and nothing
//     is stored. Otherwise the file is renamed into <dir>/sha256, which is
//     atomic: readers see a whole entry or none. Of concurrent Puts of one
//     digest the first rename wins; the others remove their temp files and
//     return nil.
//  2. Open pins the entry, marks it most recently used (in memory and in
//     the file's mtime) and returns a Reader; Reader.Close unpins it.
//  3. After a Put leaves the store over budget, and whenever a Reader
//     closes while it is over budget, the least recently used unpinned
//     entries are removed until it is under budget again. Pinned entries
//     may hold the store over budget for as long as they stay open.
//  4. Verify re-hashes an entry. A corrupt entry is dropped at once (its
//     file is unlinked; Readers already open keep their open file) and
//     ErrCorrupt is returned. Options.Verify sets when Open verifies too;
//     by default, entries recovered from disk when the Cache was opened
//     are verified on their first Open, since Put does not fsync and a
//     crash may leave a torn file.
//  5. Open of the Cache removes every file left in <dir>/tmp by a crash.
//
// A Cache is safe for concurrent use. One directory is used by one Cache
// at a time (enforced by the lock file).
package cache

import (
	"container/list"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
)

// DefaultMaxBytes is the byte budget used when Options.MaxBytes is zero.
const DefaultMaxBytes int64 = 10 << 30

// VerifyMode says when Open re-hashes an entry before returning it.
type VerifyMode int

const (
	// VerifyRecovered re-hashes, on its first Open, an entry found on disk
	// when the Cache was opened; entries Put by this Cache were hashed as
	// they were written and are trusted. It is the zero value.
	VerifyRecovered VerifyMode = iota
	// VerifyAlways re-hashes the entry on every Open.
	VerifyAlways
	// VerifyNever never re-hashes on Open; only Verify does.
	VerifyNever
)

// Options configure a Cache. The zero value is usable.
type Options struct {
	// MaxBytes is the byte budget: the sum of entry sizes above which
	// least-recently-used unpinned entries are evicted. Zero means
	// DefaultMaxBytes; negative is an error.
	MaxBytes int64
	// Verify says when Open re-hashes entries. Zero is VerifyRecovered.
	Verify VerifyMode
	// Logger receives evictions, dropped corrupt entries and files removed
	// or ignored at Open. Nil means no logging.
	Logger *slog.Logger
	// Now is the clock for last-access times. Nil means time.Now.
	Now func() time.Time
}

// Cache is a content-addressed blob store in one directory. See the
// package comment for its contract.
type Cache struct {
	dir      string
	maxBytes int64
	verify   VerifyMode
	log      *slog.Logger
	now      func() time.Time
	lock     *os.File

	mu      sync.Mutex
	entries map[digest.Digest]*entry
	lru     *list.List // of *entry; front is most recently used
	bytes   int64
	closed  bool
	stats   Stats
}

// entry is one stored blob. Its fields are guarded by Cache.mu.
type entry struct {
	d        digest.Digest
	size     int64
	atime    time.Time
	refs     int           // open Readers
	verified bool          // hashed by this Cache (on Put or since Open)
	elem     *list.Element // nil once dropped from the index
}

// Open opens (creating if needed) the store in dir, removes stray temp
// files and rebuilds the index from the entries on disk, evicting if they
// exceed the budget. It fails with ErrLocked if another Cache holds dir.
func Open(dir string, opts Options) (_ *Cache, err error) {
	if opts.MaxBytes < 0 {
		return nil, fmt.Errorf("cache: open %s: negative MaxBytes %d", dir, opts.MaxBytes)
	}
	c := &Cache{
		dir:      dir,
		maxBytes: opts.MaxBytes,
		verify:   opts.Verify,
		log:      opts.Logger,
		now:      opts.Now,
		entries:  make(map[digest.Digest]*entry),
		lru:      list.New(),
	}
	if c.maxBytes == 0 {
		c.maxBytes = DefaultMaxBytes
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	for _, d := range []string{dir, c.blobDir(), c.tmpDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("cache: open %s: %w", dir, err)
		}
	}
	if err := c.acquireLock(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.lock.Close()
		}
	}()
	if err := c.removeTemps(); err != nil {
		return nil, err
	}
	if err := c.load(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.evictLocked(nil)
	c.mu.Unlock()
	return c, nil
}

// Close releases the directory lock. Readers already open stay usable;
// Put fails with ErrClosed afterwards. Close is idempotent.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	return c.lock.Close()
}

func (c *Cache) blobDir() string { return filepath.Join(c.dir, "sha256") }
func (c *Cache) tmpDir() string  { return filepath.Join(c.dir, "tmp") }

func (c *Cache) blobPath(d digest.Digest) string {
	return filepath.Join(c.blobDir(), d.Encoded())
}

func (c *Cache) acquireLock() error {
	f, err := os.OpenFile(filepath.Join(c.dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("cache: open %s: %w", c.dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("%w: %s", ErrLocked, c.dir)
		}
		return fmt.Errorf("cache: lock %s: %w", c.dir, err)
	}
	c.lock = f
	return nil
}

// removeTemps deletes everything in the temp dir: with the lock held, no
// Put is in progress, so anything there was left by a crash.
func (c *Cache) removeTemps() error {
	des, err := os.ReadDir(c.tmpDir())
	if err != nil {
		return fmt.Errorf("cache: open %s: %w", c.dir, err)
	}
	for _, de := range des {
		p := filepath.Join(c.tmpDir(), de.Name())
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("cache: remove stray temp file: %w", err)
		}
		c.log.Info("cache: removed stray temp file", "path", p)
	}
	return nil
}

// load rebuilds the index from the blob dir, least recently used last.
func (c *Cache) load() error {
	des, err := os.ReadDir(c.blobDir())
	if err != nil {
		return fmt.Errorf("cache: open %s: %w", c.dir, err)
	}
	var found []*entry
	for _, de := range des {
		d := digest.NewDigestFromEncoded(digest.SHA256, de.Name())
		if d.Validate() != nil || !de.Type().IsRegular() {
			c.log.Warn("cache: ignoring unexpected file", "path", filepath.Join(c.blobDir(), de.Name()))
			continue
		}
		fi, err := de.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("cache: open %s: %w", c.dir, err)
		}
		found = append(found, &entry{d: d, size: fi.Size(), atime: fi.ModTime()})
	}
	sort.Slice(found, func(i, j int) bool { return found[i].atime.After(found[j].atime) })
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range found {
		e.elem = c.lru.PushBack(e)
		c.entries[e.d] = e
		c.bytes += e.size
	}
	return nil
}

// checkDigest refuses digests the layout cannot hold.
func checkDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%w: %q: %v", ErrInvalidDigest, d, err)
	}
	if d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("%w: %q: algorithm %s is not sha256", ErrInvalidDigest, d, d.Algorithm())
	}
	return nil
}
