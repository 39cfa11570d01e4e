package accel

import (
	"context"
	"errors"
	"fmt"

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
// Jobs are kept by digest, and the same digest may be in another
// repository, another registry even, whose owner converted it first: an
// accelerated form outside image's repository is not used (see
// sameRepository).
func (s *Service) Resolve(ctx context.Context, image string) (Resolution, error) {
	ref, err := NormalizeRef(image)
	if err != nil {
		return Resolution{}, err
	}
	d, err := s.conv.Resolve(ctx, ref)
	if err != nil {
		return Resolution{}, err
	}
	r := Resolution{Source: repoOf(ref) + "@" + d}
	r.Ref = r.Source
	job, err := s.Job(ctx, d)
	if errors.Is(err, ErrNotFound) || (err == nil && (job.State != StateReady || job.Result == nil || !sameRepository(job, ref))) {
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

// sameRepository reports whether job's accelerated form is in ref's
// repository. Another repository's may be another creator's, in a
// registry they control: they could take it away, failing the starts of
// every function whose image has that digest, and the function's own
// credentials may not pull from there.
func sameRepository(job Job, ref string) bool {
	return resultRepo(job) == repoOf(ref)
}

// resultRepo returns the repository of job's accelerated form.
func resultRepo(job Job) string {
	if job.Result.Local {
		return repoOf(job.Ref)
	}
	return repoOf(job.Result.Target)
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
// none is recorded. It reads only the bbolt records.
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
	repo := repoOf(image)
	if repo == "" {
		repo = repoOf(job.Ref)
	}
	st.ResolvedImage = repo + "@" + job.Digest
	switch {
	case !accelerated || job.State != StateReady || job.Result == nil:
	case !sameRepository(job, image):
		// Resolve runs the original: saying Ready would claim an
		// acceleration the function does not get.
		st.State = StateFailed
		st.Reason = fmt.Sprintf("the accelerated form of %s was made in repository %s, and fcd keeps one per digest and uses it only for that repository's images: this image runs as it is", job.Digest, resultRepo(job))
	case job.Mode == ModeFull:
		st.ResolvedImage = repoOf(job.Result.Target) + "@" + job.Result.TargetDigest
	}
	return st
}
