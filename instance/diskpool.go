package instance

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// diskPool keeps writable-layer disk files made ahead of starts: sparse
// files of a disk size, already formatted as ext4, so a start renames one
// into its instance directory instead of running mkfs.ext4 (a fork and
// exec of a few to a hundred milliseconds on a busy host). A file is
// never mounted before it is taken and serves one instance only.
//
// The files live in dir as <diskMB>-<id>.ext4; one being made is
// <name>.tmp until mkfs finished. A pool finds the complete files an
// earlier run left and removes the incomplete ones. It keeps size files
// for each disk size wanted: DefaultDiskMB from the start, any other once
// a start asked for it.
//
// run makes files until its context ends; take and refill never block on
// it. Lock order: filling, mu.
type diskPool struct {
	dir  string
	size int
	log  *slog.Logger
	kick chan struct{} // buffered 1: refill wanted

	filling sync.Mutex // held by fill
	mu      sync.Mutex // guards ready, wanted, scanned
	ready   map[int][]string
	wanted  map[int]bool
	scanned bool
}

func newDiskPool(dir string, size int, log *slog.Logger) *diskPool {
	return &diskPool{
		dir: dir, size: size, log: log, kick: make(chan struct{}, 1),
		ready: map[int][]string{}, wanted: map[int]bool{DefaultDiskMB: true},
	}
}

// take moves a prepared disk file of diskMB to path and reports whether
// it did; on false the caller makes the file itself.
func (p *diskPool) take(diskMB int, path string) bool {
	for {
		f, ok := p.pop(diskMB)
		if !ok {
			return false
		}
		if err := os.Rename(f, path); err == nil {
			return true
		}
		// Gone meanwhile (the directory was cleaned): try the next one.
	}
}

func (p *diskPool) pop(diskMB int) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wanted[diskMB] = true
	r := p.ready[diskMB]
	if len(r) == 0 {
		return "", false
	}
	f := r[len(r)-1]
	p.ready[diskMB] = r[:len(r)-1]
	return f, true
}

// refill asks run to top the pool up; see netPool.refill for when.
func (p *diskPool) refill() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// run fills the pool, and again on each refill, until ctx ends.
func (p *diskPool) run(ctx context.Context) {
	runPool(ctx, p.kick, p.fill, p.log, "prepare disk file")
}

// fill makes disk files until every wanted size has size of them, and
// returns the first error. One fill runs at a time.
func (p *diskPool) fill(ctx context.Context) error {
	p.filling.Lock()
	defer p.filling.Unlock()
	if err := p.scan(); err != nil {
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		diskMB, ok := p.short()
		if !ok {
			return nil
		}
		f := filepath.Join(p.dir, fmt.Sprintf("%d-%s.ext4", diskMB, newID()))
		if err := makeDisk(ctx, f+".tmp", diskMB); err != nil {
			os.Remove(f + ".tmp")
			return err
		}
		if err := os.Rename(f+".tmp", f); err != nil {
			return err
		}
		p.mu.Lock()
		p.ready[diskMB] = append(p.ready[diskMB], f)
		p.mu.Unlock()
	}
}

// short returns a wanted disk size the pool holds fewer than size of.
func (p *diskPool) short() (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for mb := range p.wanted {
		if len(p.ready[mb]) < p.size {
			return mb, true
		}
	}
	return 0, false
}

// scan, once, adopts the complete files an earlier run left in dir and
// removes the rest.
func (p *diskPool) scan() error {
	p.mu.Lock()
	scanned := p.scanned
	p.mu.Unlock()
	if scanned {
		return nil
	}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(p.dir)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range entries {
		f := filepath.Join(p.dir, e.Name())
		mb, ok := diskFileSize(e.Name())
		if !ok {
			os.RemoveAll(f)
			continue
		}
		p.ready[mb] = append(p.ready[mb], f)
	}
	p.scanned = true
	return nil
}

// diskFileSize parses a complete pool file's name, <diskMB>-<id>.ext4.
func diskFileSize(name string) (int, bool) {
	base, ok := strings.CutSuffix(name, ".ext4")
	if !ok {
		return 0, false
	}
	mb, _, ok := strings.Cut(base, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(mb)
	return n, err == nil && n > 0
}

// makeDisk creates path as a sparse ext4 file that holds diskMB of data.
func makeDisk(ctx context.Context, path string, diskMB int) error {
	size := int64(float64(int64(diskMB)<<20) * ext4Overhead)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("disk file: %w", err)
	}
	err = f.Truncate(size)
	f.Close()
	if err != nil {
		return fmt.Errorf("disk file: %w", err)
	}
	out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-m", "0", "-E", "nodiscard,lazy_itable_init=1", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mkfs.ext4: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
