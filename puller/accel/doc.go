// Package accel converts container images for lazy loading (DESIGN.md,
// "Image acceleration") and runs those conversions as durable jobs.
//
// # Modes
//
// A conversion reads a source image <repo>:<tag> (its linux/amd64 manifest)
// and writes <repo>:<tag>_accelerated next to it:
//
//   - ModeFull writes a new image whose layers are eStargz
//     (github.com/containerd/stargz-snapshotter/estargz): still valid gzip
//     tar layers any runtime can pull whole, with a table of contents so a
//     lazy puller can fetch single files. Files on the prefetch list go
//     first, before the prefetch landmark. Layers are converted in
//     parallel with a fast gzip (klauspost/compress).
//   - ModeIndexOnly leaves the image untouched and writes a small OCI
//     artifact (ArtifactTypeGzindex) whose subject is the source manifest
//     and whose layers are one puller/gzindex index per source layer,
//     each annotated with the layer digest it serves. Only gzip layers can
//     be indexed; zstd and uncompressed layers are refused (ErrUnsupported).
//
// Both record the source manifest digest and the mode in the accelerated
// manifest's annotations (AnnotationSource, AnnotationMode), so Lookup can
// tell that an existing <tag>_accelerated, made by this host before a
// reinstall or by another host sharing the registry, is current.
//
// # Jobs
//
// Jobs (jobs.go) keeps one record per repository and source image digest
// (<repo>@<digest>) in bbolt, under its own versioned root, and a Service
// works them off with a bounded pool. The same digest in two repositories
// is two jobs, each converted into its own repository: an accelerated form
// is used only for its own repository's images (Service.Resolve), since
// another repository's may be another creator's, who could remove it, and
// the function's credentials may not pull from there. A job survives a
// restart of fcd (a job found Preparing is run again from the start:
// conversions are idempotent, the registry deduplicates blobs), one job is
// never converted twice at once, and a failed job keeps its reason until
// it is retried.
//
// A full-mode image puts the source's start-up record (puller/lazy) first
// in its layers, before the prefetch landmark, and says how many files it
// put there (AnnotationStartupFiles). Images are mostly converted before
// their first start, so when a start-up record appears later, Rebake
// converts a Ready full-mode image without one again, after
// ServiceOptions.RebakeDelay; the job stays Ready, its image in use, until
// the new one replaces it. Hosts that lack the record then prefetch what
// the image reads at start-up from the landmark.
//
// The package does not pull or mount images (puller does) and does not
// decide HTTP status codes (proxy does).
package accel
