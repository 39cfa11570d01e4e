// Package remote reads registry blobs by byte range for the lazy path:
// single-range GETs with the function's temporary credentials, verified
// chunks kept in the host's content-addressed cache, and a fetch queue in
// which on-demand reads jump ahead of prefetch and background work.
//
// It owns network I/O for lazily read blobs; it does not know tar, gzip or
// FUSE (that is puller/lazyfs), nor cache policy (that is cache).
//
// # Use
//
// One Fetcher per host process (New) holds the queues; a Blob (Fetcher.Blob)
// names one blob of one repository, the registry hosts to read it from
// (containerd's docker.RegistryHosts, so hosts.toml mirrors and TLS apply)
// and the credentials callback. Blob.ReadChunk reads a whole chunk checked
// against its sha256 and kept in the cache; Blob.ReadRange reads bytes that
// are verified some other way (a TOC, an index footer). Reads are sized by
// the caller (a chunk: 16 KiB for fcd's gzindex v2 conversions, an eStargz
// chunk's gzip members) and held in memory whole.
//
// # What a read survives
//
// Every request is one GET with a single "Range: bytes=a-b" (never
// multi-range, which some registries refuse). A 206 for fewer bytes than
// asked is resumed; a 200 with the whole blob is streamed, its leading
// bytes discarded as they arrive (slow, but never buffered), and counted in
// Stats.WholeBlob. Redirects (to pre-signed storage URLs) are followed on
// every request, never remembered; a 403 from a redirect target (an expired
// URL) is retried through the registry. A 401 or 403 from the registry
// re-authenticates: a new containerd docker authorizer, fed by the
// Credentials callback (so new temporary credentials), answers the host's
// challenge (the last one seen, for a 403 that carries none). Connection
// errors, 5xx and 429, bodies that stall (no bytes for StallTimeout) or
// break off are retried from the first missing byte with exponential
// back-off, moving on to the next host, until RetryTimeout; then the read
// fails with ErrUnavailable in a FetchError naming the registry, repository,
// digest and range. A later read tries again. A connection refused by
// policy (an error of category errdefs.ErrPermissionDenied from the
// dialer, as puller.AddressPolicy returns) fails the read at once: a
// retry would be refused too. A circuit breaker per
// registry host holds requests back while the host keeps failing, so a
// down registry sees a probe per cooldown instead of a storm.
//
// # Scheduling
//
// Reads wait in one queue per registry: OnDemand before Prefetch before
// Background, oldest first, at most Options.Streams GETs at once, of which
// Background may use all but one, and only one while on-demand or
// prefetch GETs run or ran within Options.BackgroundQuiet (TCP shares the
// link per connection: several background GETs would starve a read a
// process waits on); background GETs are at most BackgroundRequest
// bytes, so a read that arrives waits little for a stream. A read identical to one pending or in
// flight joins it; pending reads of one blob adjacent to the one being
// sent ride in its GET, up to Options.MaxRequest bytes, each delivered as
// soon as its last byte arrives. A caller whose context ends leaves; a
// GET nobody waits for any more is cancelled. Memory in flight is at most
// Streams GETs of MaxRequest (or one read's size, if larger).
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
