// Package remote reads registry blobs by byte range for the lazy path:
// single-range GETs with the function's temporary credentials, verified
// chunks kept in the host's content-addressed cache, and a fetch queue in
// which on-demand reads jump ahead of prefetch and background work.
//
// It owns network I/O for lazily read blobs; it does not know tar, gzip or
// FUSE (that is puller/lazyfs), nor cache policy (that is cache).
package remote

// Priority orders fetches: a higher priority is served first, and a
// running lower-priority fetch never delays a higher one for longer than
// one request.
type Priority int

const (
	// Background fills in the rest of an image after start-up.
	Background Priority = iota
	// Prefetch fetches what an image is known to read at start-up.
	Prefetch
	// OnDemand serves a read that a process is blocked on.
	OnDemand
)

func (p Priority) String() string {
	switch p {
	case Background:
		return "background"
	case Prefetch:
		return "prefetch"
	case OnDemand:
		return "on-demand"
	}
	return "unknown"
}
