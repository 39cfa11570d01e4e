package instance

import (
	"strconv"
	"sync"
)

// DefaultShimGroupSize is how many live instances share one shim when
// Options.ShimGroup is set and Options.ShimGroupSize is zero.
const DefaultShimGroupSize = 16

// shimGroups deals instances out to runc v2 shim groups of at most size
// live instances, so a shim's crash ends at most size instances. New
// instances join the current group until it is full, then a new one; a
// full group's shim serves its instances until the last one is deleted,
// and then exits.
type shimGroups struct {
	prefix string // Options.Name and the Manager's generation
	size   int

	mu   sync.Mutex
	seq  int            // number of the current group
	live map[string]int // group -> its live instances
}

func newShimGroups(prefix string, size int) *shimGroups {
	return &shimGroups{prefix: prefix, size: size, live: map[string]int{}}
}

// join returns the group of a new instance and counts it in.
func (g *shimGroups) join() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	group := g.name()
	if g.live[group] >= g.size {
		g.seq++
		group = g.name()
	}
	g.live[group]++
	return group
}

// leave counts out an instance of group whose container is gone.
func (g *shimGroups) leave(group string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.live[group]--; g.live[group] <= 0 {
		delete(g.live, group)
	}
}

func (g *shimGroups) name() string { return g.prefix + "-" + strconv.Itoa(g.seq) }
