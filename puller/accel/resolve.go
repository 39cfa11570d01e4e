package accel

import (
	"context"
	"errors"

	"github.com/google/go-containerregistry/pkg/name"
)

// Resolution is which image an instance runs.
type Resolution struct {
	// Ref is the digest-pinned reference to run: the full-mode
	// accelerated image once Ready, else the original.
	Ref string
	// Source is the original image, digest-pinned.
	Source string
	// Accelerated is true when the image's accelerated form is Ready:
	// Ref is the eStargz image (ModeFull), or Index is the index-only
	// artifact for Source (ModeIndexOnly).
	Accelerated bool
	Mode        Mode
	// Index is the index-only artifact, digest-pinned, when Accelerated
	// and Mode is ModeIndexOnly.
	Index string
	// LocalIndex is true when the registry refused the index artifact and
	// fcd keeps the indexes itself: Service.Index serves them by layer.
	LocalIndex bool
	// Lazy, when Accelerated and the accelerated form is in the
	// registry, names it by its tag and pins it by digest
	// ("repo:tag_accelerated@sha256:..."): the reference a lazy puller
	// mounts, in either mode, and recognises by its tag.
	Lazy string
}

// Resolve returns the image an instance of a function with
// accelerationType Default runs for image: its accelerated form when its
// job is Ready, the original (digest-pinned) otherwise. It asks the
// registry for the image's current digest. A function with
// accelerationType None runs the original and need not call it.
//
// Only the job of image's own repository is used, never another
// repository's job of the same digest: that one's accelerated form is in
// another repository, another registry even, whose creator could take it
// away, failing the starts of every function whose image has that digest,
// and from which the function's own credentials may not pull.
func (s *Service) Resolve(ctx context.Context, image string) (Resolution, error) {
	ref, err := NormalizeRef(image)
	if err != nil {
		return Resolution{}, err
	}
	d, err := s.conv.Resolve(ctx, ref)
	if err != nil {
		return Resolution{}, err
	}
	// The digest-pinned original is its repository's job key.
	r := Resolution{Source: jobKey(repoOf(ref), d)}
	r.Ref = r.Source
	job, err := s.Job(ctx, r.Source)
	if errors.Is(err, ErrNotFound) || (err == nil && (job.State != StateReady || job.Result == nil)) {
		return r, nil
	}
	if err != nil {
		return Resolution{}, err
	}
	r.Accelerated, r.Mode = true, job.Mode
	pinned := repoOf(job.Result.Target) + "@" + job.Result.TargetDigest
	if !job.Result.Local {
		r.Lazy = job.Result.Target + "@" + job.Result.TargetDigest
	}
	switch {
	case job.Mode == ModeFull:
		r.Ref = pinned
	case job.Result.Local:
		r.LocalIndex = true
	default:
		r.Index = pinned
	}
	return r, nil
}

// repoOf returns the repository of a reference, "" if it does not parse.
func repoOf(ref string) string {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return ""
	}
	return r.Context().Name()
}

// Status is what GetFunction reports of a function's image.
type Status struct {
	// State is the image's acceleration state; Preparing when no job is
	// recorded yet.
	State State
	// Reason is the failure's reason when Failed.
	Reason string
	// ResolvedImage is the digest-pinned image a new instance runs, as far
	// as recorded; empty when the digest is not known yet.
	ResolvedImage string
}

// FunctionStatus reports the acceleration state of image for a function
// with accelerationType Default (accelerated true) or None, from the
// records only, and queues a conversion (Ensure) when accelerated and
// none is recorded: the job of image's tag, or for a digest-pinned image,
// of its repository and digest. It reads only the bbolt records.
func (s *Service) FunctionStatus(image string, accelerated bool) Status {
	job, err := s.Job(context.Background(), image)
	if err != nil {
		if accelerated {
			s.Ensure(image)
		}
		return Status{State: StatePreparing}
	}
	st := Status{State: job.State}
	if job.State == StateFailed {
		st.Reason = job.Error
	}
	if job.Digest == "" {
		return st
	}
	st.ResolvedImage = job.Key()
	if accelerated && job.State == StateReady && job.Result != nil && job.Mode == ModeFull {
		st.ResolvedImage = repoOf(job.Result.Target) + "@" + job.Result.TargetDigest
	}
	return st
}
