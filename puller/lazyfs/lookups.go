package lazyfs

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// LookupObserver is told of the names the kernel looks up in a layer
// (Layer.ObserveLookups): name is the path looked up, relative to the
// layer root, and found whether the layer has it. It is called on the
// FUSE request path, so it must be quick, and it may be called
// concurrently.
type LookupObserver func(name string, found bool)

// lookupObservers is a layer's set of LookupObservers.
type lookupObservers struct{ observerSet[LookupObserver] }

// notify tells the observers, if any, of a lookup of name in dir.
func (o *lookupObservers) notify(dir *tnode, name string, found bool) {
	l := o.load()
	if l == nil {
		return
	}
	p := path.Join(dir.path, name)
	for _, f := range l {
		f(p, found)
	}
}

// ObserveLookups calls f for every lookup that reaches the daemon from
// now on, until remove is called. The kernel caches what a lookup
// answered (MountOptions.Timeout), negative answers included, so a name
// is seen at most once while it stays cached. A layer is shared, so the
// lookups of every image using it are seen, and so are those of
// WarmLookups.
func (l *Layer) ObserveLookups(f LookupObserver) (remove func()) { return l.lookups.add(f) }

// warmWorkers is how many lookups WarmLookups has outstanding at once.
const warmWorkers = 4

// WarmLookups looks names (paths relative to the layer root, as a
// LookupObserver sees them) up through the mount, roughly in order,
// warmWorkers at a time, so the kernel caches the answers: a process's
// later lookup of one of them, through an overlayfs above the layer for
// one, is answered by the kernel's dentry cache without a round trip to
// the daemon. Looking a name up looks up its parents too; a name the
// layer does not have is cached as absent. It returns the number of
// names looked up, when all were or ctx ends.
func (l *Layer) WarmLookups(ctx context.Context, names []string) (int, error) {
	root, err := unix.Open(l.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("warm lookups of layer %s: %w", l.name, err)
	}
	defer unix.Close(root)
	var next, done atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for range min(warmWorkers, len(names)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				k := next.Add(1) - 1
				if k >= int64(len(names)) {
					return
				}
				var st unix.Stat_t
				err := unix.Fstatat(root, names[k], &st, unix.AT_SYMLINK_NOFOLLOW)
				if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTDIR) {
					mu.Lock()
					if len(errs) < 3 {
						errs = append(errs, fmt.Errorf("%s: %w", names[k], err))
					}
					mu.Unlock()
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return int(done.Load()), err
	}
	if len(errs) > 0 {
		return int(done.Load()), fmt.Errorf("warm lookups of layer %s: %w", l.name, errors.Join(errs...))
	}
	return int(done.Load()), nil
}
