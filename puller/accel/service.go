package accel

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/name"
	bolt "go.etcd.io/bbolt"
)

// Converts is what a Service needs of a Converter.
type Converts interface {
	Convert(ctx context.Context, req Request) (Result, error)
	// Resolve returns the digest of ref's linux/amd64 manifest.
	Resolve(ctx context.Context, ref string) (string, error)
}

var _ Converts = (*Converter)(nil)

// ServiceOptions configures a Service. The zero value of each field is its
// default.
type ServiceOptions struct {
	// Workers bounds the conversions run at once. Zero means 1: each
	// conversion already uses every core.
	Workers int
	// DefaultMode is the mode of conversions started on demand (Ensure)
	// for repositories without a setting. Zero means ModeIndexOnly.
	DefaultMode Mode
	// HTTPClient calls webhooks. Nil means a client with a 10 s timeout.
	HTTPClient *http.Client
	// Logger receives job records. Nil means silent.
	Logger *slog.Logger
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// RebakeDelay is how long after Rebake a Ready full-mode image is
	// converted again to bake its source's new start-up record into its
	// prefetch order: a conversion takes every core for a while, so not
	// right after the cold start that made the record. Zero means
	// DefaultRebakeDelay; negative never converts again.
	RebakeDelay time.Duration
	// ConvertTimeout bounds one conversion; one not done by then fails
	// (a registry that sends a blob a byte at a time would otherwise hold
	// a worker for ever). Zero means DefaultConvertTimeout; negative, no
	// bound.
	ConvertTimeout time.Duration
	// ResolveTimeout bounds the registry lookup of an image queued on
	// demand (Ensure), which no caller waits for: a registry that never
	// answers would otherwise keep a goroutine and a connection for each
	// image named. Zero means DefaultResolveTimeout; negative, no bound.
	ResolveTimeout time.Duration
}

// DefaultRebakeDelay is ServiceOptions.RebakeDelay's default.
const DefaultRebakeDelay = 10 * time.Minute

// DefaultConvertTimeout is ServiceOptions.ConvertTimeout's default: a
// 10 GiB image (Options.MaxUncompressedSize) fetched at 10 MB/s, with its
// conversion, takes a third of it.
const DefaultConvertTimeout = 30 * time.Minute

// DefaultResolveTimeout is ServiceOptions.ResolveTimeout's default.
const DefaultResolveTimeout = time.Minute

// Service keeps conversion jobs and repository settings in bbolt and runs
// the jobs (Run). It is safe for concurrent use.
//
// A job is the conversion of one image digest in one repository, kept
// under <repo>@<digest> (Job.Key): the same digest in two repositories is
// two jobs, each converted into its own repository, since an accelerated
// form is used only for its own repository's images (Resolve).
//
// A job's life: Accelerate (or Ensure, or OnPush) records it Preparing and
// wakes Run; a worker converts it and records Ready with the Result, or
// Failed with the reason. A job Preparing when fcd stops is converted
// again from the start by the next Run. Accelerate on a Failed job, or on
// a Ready one in another mode, starts it again; on a Preparing one it
// returns the job as is, so a job is never converted twice at once.
type Service struct {
	db   *bolt.DB
	conv Converts
	opts ServiceOptions
	log  *slog.Logger

	wake   chan struct{}
	demand chan string

	mu       sync.Mutex
	running  map[string]bool // job keys being converted
	demanded map[string]bool // refs queued on demand, not yet resolved
	changed  chan struct{}   // closed and replaced when a job changes
}

// progressSaveInterval is the least time between two progress writes of a
// job.
const progressSaveInterval = time.Second

// NewService returns a Service keeping its records in db (migrating its
// buckets) and converting with conv. It does not own db.
func NewService(db *bolt.DB, conv Converts, opts ServiceOptions) (*Service, error) {
	if err := schema.Migrate(db, schema.Latest()); err != nil {
		return nil, err
	}
	opts.Workers = cmp.Or(opts.Workers, 1)
	opts.DefaultMode = cmp.Or(opts.DefaultMode, ModeIndexOnly)
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.RebakeDelay = cmp.Or(opts.RebakeDelay, DefaultRebakeDelay)
	opts.ConvertTimeout = cmp.Or(opts.ConvertTimeout, DefaultConvertTimeout)
	opts.ResolveTimeout = cmp.Or(opts.ResolveTimeout, DefaultResolveTimeout)
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{
		db: db, conv: conv, opts: opts, log: log,
		wake:     make(chan struct{}, 1),
		demand:   make(chan string, 64),
		running:  map[string]bool{},
		demanded: map[string]bool{},
		changed:  make(chan struct{}),
	}, nil
}

// NormalizeRef returns ref fully qualified (host/repository:tag or
// host/repository@digest), the form jobs are looked up by.
func NormalizeRef(ref string) (string, error) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrInvalidRef, ref, err)
	}
	return r.Name(), nil
}

// Accelerate records a conversion of req.Ref (resolved now to its digest,
// unless req.Digest pins it) in req.Ref's repository and returns its job,
// that of the digest in that repository. req.Progress is ignored: follow
// the job. The repository's webhook, if set, is called when it ends.
func (s *Service) Accelerate(ctx context.Context, req Request) (Job, error) {
	if err := req.Mode.Check(); err != nil {
		return Job{}, err
	}
	tag, err := ParseTag(req.Ref)
	if err != nil {
		return Job{}, err
	}
	if req.Digest == "" {
		if req.Digest, err = s.conv.Resolve(ctx, tag.String()); err != nil {
			return Job{}, err
		}
	}
	set, _ := s.Settings(ctx, tag.Context().Name())
	key := jobKey(tag.Context().Name(), req.Digest)
	var job Job
	err = s.db.Update(func(tx *bolt.Tx) error {
		ok, err := getJSON(jobs(tx), key, &job)
		if err != nil {
			return err
		}
		switch {
		case ok && job.State == StatePreparing,
			ok && job.State == StateReady && job.Mode == req.Mode:
			return refs(tx).Put([]byte(tag.Name()), []byte(key))
		case !ok:
			job = Job{Created: s.opts.Now()}
		}
		// A refusal kept under this key (a digest-pinned reference) has
		// no digest yet.
		job.Digest, job.Ref, job.Mode, job.Prefetch, job.Webhook = req.Digest, tag.Name(), req.Mode, req.Prefetch, set.Webhook
		job.State, job.Error, job.Result, job.Progress, job.RebakeAt = StatePreparing, "", nil, Progress{}, nil
		job.Updated = s.opts.Now()
		if err := putJSON(jobs(tx), key, &job); err != nil {
			return err
		}
		// A failed on-demand resolution of this tag is superseded.
		if prev := refs(tx).Get([]byte(tag.Name())); prev != nil && string(prev) == tag.Name() {
			if err := jobs(tx).Delete(prev); err != nil {
				return err
			}
		}
		return refs(tx).Put([]byte(tag.Name()), []byte(key))
	})
	if err != nil {
		return Job{}, err
	}
	s.jobChanged()
	s.poke()
	return job, nil
}

// jobChanged wakes the Wait calls.
func (s *Service) jobChanged() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.changed)
	s.changed = make(chan struct{})
}

// Wait returns ref's job (see Job) once until reports true for it, or
// ctx's error. A job not recorded yet is waited for.
func (s *Service) Wait(ctx context.Context, ref string, until func(Job) bool) (Job, error) {
	for {
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		j, err := s.Job(ctx, ref)
		if err == nil && until(j) {
			return j, nil
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return j, err
		}
		select {
		case <-ctx.Done():
			return j, ctx.Err()
		case <-changed:
		}
	}
}

// Job returns a job: by digest-pinned reference (<repo>@<digest>, its
// Key: that repository's job of that digest), by tag (the job of the
// digest the tag named when last accelerated), or by digest alone
// ("sha256:...") when one repository has a job of it; ErrAmbiguous when
// several have, ErrNotFound when none has.
func (s *Service) Job(ctx context.Context, ref string) (Job, error) {
	if strings.HasPrefix(ref, "sha256:") {
		return s.jobOfDigest(ref)
	}
	n, err := NormalizeRef(ref)
	if err != nil {
		return Job{}, err
	}
	var job Job
	err = s.db.View(func(tx *bolt.Tx) error {
		found, err := getJSON(jobs(tx), keyOf(tx, n), &job)
		if err == nil && !found {
			err = fmt.Errorf("%w: no acceleration job for %s", ErrNotFound, ref)
		}
		return err
	})
	return job, err
}

// keyOf returns the key of the job that n, a normalized reference, names:
// the one its refs entry records, else, for a digest-pinned reference, n
// itself; "" for a tag never accelerated.
func keyOf(tx *bolt.Tx, n string) string {
	if k := refs(tx).Get([]byte(n)); k != nil {
		return string(k)
	}
	if strings.Contains(n, "@") {
		return n
	}
	return ""
}

// jobOfDigest returns the only job of manifest digest d.
func (s *Service) jobOfDigest(d string) (Job, error) {
	var found []Job
	err := s.db.View(func(tx *bolt.Tx) error {
		return eachJob(tx, func(k string, j Job) error {
			if j.Digest == d {
				found = append(found, j)
			}
			return nil
		})
	})
	switch {
	case err != nil:
		return Job{}, err
	case len(found) == 0:
		return Job{}, fmt.Errorf("%w: no acceleration job for %s", ErrNotFound, d)
	case len(found) > 1:
		keys := make([]string, len(found))
		for i, j := range found {
			keys[i] = j.Key()
		}
		return Job{}, fmt.Errorf("%w: %s has a job in each of %s", ErrAmbiguous, d, strings.Join(keys, ", "))
	}
	return found[0], nil
}

// Jobs returns every job, one per repository and digest (and refusal),
// the most recently updated first.
func (s *Service) Jobs(ctx context.Context) ([]Job, error) {
	var out []Job
	err := s.db.View(func(tx *bolt.Tx) error {
		return eachJob(tx, func(k string, j Job) error {
			out = append(out, j)
			return nil
		})
	})
	slices.SortFunc(out, func(a, b Job) int { return b.Updated.Compare(a.Updated) })
	return out, err
}

// SetSettings records a repository's setting and returns it as stored.
// Enabling does not convert the tags already in the repository.
func (s *Service) SetSettings(ctx context.Context, set Settings) (Settings, error) {
	repo, err := name.NewRepository(set.Repository, name.Insecure)
	if err != nil {
		return set, fmt.Errorf("%w: repository %q: %v", ErrInvalidRef, set.Repository, err)
	}
	set.Repository = repo.Name()
	set.Mode = cmp.Or(set.Mode, s.opts.DefaultMode)
	if err := set.Mode.Check(); err != nil {
		return set, err
	}
	if set.Webhook != "" && !strings.HasPrefix(set.Webhook, "http://") && !strings.HasPrefix(set.Webhook, "https://") {
		return set, fmt.Errorf("%w: webhook %q is not an http(s) URL", ErrInvalidRef, set.Webhook)
	}
	set.Updated = s.opts.Now()
	return set, s.db.Update(func(tx *bolt.Tx) error { return putJSON(repos(tx), set.Repository, &set) })
}

// Settings returns a repository's setting; ErrNotFound when it has none.
func (s *Service) Settings(ctx context.Context, repository string) (Settings, error) {
	repo, err := name.NewRepository(repository, name.Insecure)
	if err != nil {
		return Settings{}, fmt.Errorf("%w: repository %q: %v", ErrInvalidRef, repository, err)
	}
	var set Settings
	err = s.db.View(func(tx *bolt.Tx) error {
		ok, err := getJSON(repos(tx), repo.Name(), &set)
		if err == nil && !ok {
			err = fmt.Errorf("%w: no acceleration setting for %s", ErrNotFound, repo.Name())
		}
		return err
	})
	return set, err
}

// AllSettings returns every repository's setting.
func (s *Service) AllSettings(ctx context.Context) ([]Settings, error) {
	var out []Settings
	err := s.db.View(func(tx *bolt.Tx) error {
		return repos(tx).ForEach(func(k, v []byte) error {
			var set Settings
			if err := json.Unmarshal(v, &set); err != nil {
				return fmt.Errorf("accel: decode setting %s: %w", k, err)
			}
			out = append(out, set)
			return nil
		})
	})
	return out, err
}

// referrersTag is the tag under which a registry without the referrers
// API keeps the artifacts that refer to a manifest (OCI distribution
// spec, "referrers tag schema"): pushing an index-only artifact writes
// one, and it is no image to convert.
var referrersTag = regexp.MustCompile(`^sha256-[0-9a-f]{64}$`)

// OnPush is told of a tag pushed to the embedded registry with its
// manifest digest. It records a job when the repository has acceleration
// enabled and the tag is neither accelerated itself nor a referrers tag;
// queued reports whether it did.
func (s *Service) OnPush(ctx context.Context, repository, tag, digest string) (queued bool, err error) {
	if IsAcceleratedTag(tag) || tag == "" || referrersTag.MatchString(tag) {
		return false, nil
	}
	set, err := s.Settings(ctx, repository)
	if errors.Is(err, ErrNotFound) || (err == nil && !set.Enabled) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_, err = s.Accelerate(ctx, Request{Ref: set.Repository + ":" + tag, Digest: digest, Mode: set.Mode, Prefetch: set.Prefetch})
	return err == nil, err
}

// Ensure makes sure image has a job, without waiting: when none is
// recorded for it (Job), a conversion in the repository's mode (else
// ServiceOptions.DefaultMode) is queued for Run to resolve and record. It
// never blocks on the registry, so GetFunction may call it.
func (s *Service) Ensure(image string) {
	ref, err := NormalizeRef(image)
	if err != nil {
		return
	}
	var known bool
	s.db.View(func(tx *bolt.Tx) error {
		known = jobs(tx).Get([]byte(keyOf(tx, ref))) != nil
		return nil
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	if known || s.demanded[ref] {
		return
	}
	select {
	case s.demand <- ref:
		s.demanded[ref] = true
	default: // full: a later call asks again
	}
}

// ensure resolves and records a job queued by Ensure. A refusal (an
// invalid reference, credentials denied) is kept as a Failed job under the
// reference, unless a job is found for it meanwhile, so Ensure does not
// retry it; Accelerate does. Other failures
// (the image is not there yet, the registry is down) are not recorded.
func (s *Service) ensure(ctx context.Context, ref string) {
	defer func() {
		s.mu.Lock()
		delete(s.demanded, ref)
		s.mu.Unlock()
	}()
	mode := s.opts.DefaultMode
	var prefetch []string
	if tag, err := name.NewTag(ref, name.Insecure); err == nil {
		if set, err := s.Settings(ctx, tag.Context().Name()); err == nil {
			mode, prefetch = set.Mode, set.Prefetch
		}
	}
	rctx, cancel := withBound(ctx, s.opts.ResolveTimeout, fmt.Errorf("accel: %s not resolved within %v", ref, s.opts.ResolveTimeout))
	defer cancel()
	_, err := s.Accelerate(rctx, Request{Ref: ref, Mode: mode, Prefetch: prefetch})
	if err == nil || ctx.Err() != nil {
		return
	}
	if !errdefs.IsInvalidArgument(err) && !errdefs.IsPermissionDenied(err) {
		// An image not pushed yet, or a registry down, is asked for
		// again by the next Ensure.
		s.log.Debug("on-demand acceleration deferred", "ref", ref, "error", err)
		return
	}
	s.log.Warn("on-demand acceleration refused", "ref", ref, "error", err)
	now := s.opts.Now()
	job := Job{Ref: ref, Mode: mode, State: StateFailed, Error: reason(err), Created: now, Updated: now}
	s.db.Update(func(tx *bolt.Tx) error {
		// Not over a job recorded meanwhile: a digest-pinned reference
		// is also the key of its repository's job of that digest.
		if jobs(tx).Get([]byte(keyOf(tx, ref))) != nil {
			return nil
		}
		if err := putJSON(jobs(tx), ref, &job); err != nil {
			return err
		}
		return refs(tx).Put([]byte(ref), []byte(ref))
	})
	s.jobChanged()
}

func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run converts recorded jobs until ctx ends, with at most
// ServiceOptions.Workers at once, starting with those an earlier run left
// Preparing. A conversion cut short by ctx stays Preparing for the next
// Run. Run returns nil when ctx ends, after its conversions have stopped.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, s.opts.Workers)
	rebake := time.NewTimer(time.Hour)
	defer rebake.Stop()
	for {
		pending, next, err := s.pending()
		if err != nil {
			return err
		}
		if !next.IsZero() {
			rebake.Reset(max(next.Sub(s.opts.Now()), 0))
		}
	start:
		for _, j := range pending {
			select {
			case sem <- struct{}{}:
			default:
				break start
			}
			s.mu.Lock()
			s.running[j.Key()] = true
			s.mu.Unlock()
			wg.Go(func() {
				defer func() {
					s.mu.Lock()
					delete(s.running, j.Key())
					s.mu.Unlock()
					<-sem
					s.poke()
				}()
				s.convert(ctx, j)
			})
		}
		select {
		case <-ctx.Done():
			return nil
		case <-rebake.C:
		case <-s.wake:
		case ref := <-s.demand:
			wg.Go(func() { s.ensure(ctx, ref) })
		}
	}
}

// pending returns the jobs to convert now and not being converted, oldest
// first: the Preparing ones, and the Ready ones whose RebakeAt has come.
// next is the earliest RebakeAt still to come, zero for none.
func (s *Service) pending() (out []Job, next time.Time, err error) {
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	err = s.db.View(func(tx *bolt.Tx) error {
		return eachJob(tx, func(k string, j Job) error {
			switch {
			case s.running[j.Key()]:
			case j.State == StatePreparing:
				out = append(out, j)
			case j.State == StateReady && j.RebakeAt != nil && !j.RebakeAt.After(now):
				out = append(out, j)
			case j.State == StateReady && j.RebakeAt != nil && (next.IsZero() || j.RebakeAt.Before(next)):
				next = *j.RebakeAt
			}
			return nil
		})
	})
	slices.SortFunc(out, func(a, b Job) int { return a.Created.Compare(b.Created) })
	return out, next, err
}

// convert runs one job and records its end.
func (s *Service) convert(ctx context.Context, j Job) {
	if j.State == StateReady {
		s.rebake(ctx, j)
		return
	}
	key := j.Key()
	j, err := s.update(key, func(j *Job) { j.Attempts++ })
	if err != nil {
		s.log.Error("acceleration job", "job", key, "error", err)
		return
	}
	s.log.Info("acceleration started", "ref", j.Ref, "digest", j.Digest, "mode", j.Mode, "attempt", j.Attempts)
	var saved time.Time
	cctx, cancel := s.bounded(ctx)
	defer cancel()
	res, err := s.conv.Convert(cctx, Request{
		Ref: j.Ref, Digest: j.Digest, Mode: j.Mode, Prefetch: j.Prefetch,
		KeepIndexes: s.keepIndexes,
		Progress: func(p Progress) {
			if now := time.Now(); now.Sub(saved) >= progressSaveInterval || p.LayersDone == p.Layers {
				saved = now
				s.update(key, func(j *Job) { j.Progress = p })
			}
		},
	})
	if ctx.Err() != nil {
		s.log.Info("acceleration interrupted; it restarts with fcd", "ref", j.Ref, "digest", j.Digest)
		return
	}
	err = timedOut(cctx, err)
	j, uerr := s.update(key, func(j *Job) {
		if err != nil {
			j.State, j.Error = StateFailed, reason(err)
			return
		}
		j.State, j.Result = StateReady, &res
		j.Progress.LayersDone, j.Progress.BytesDone = j.Progress.Layers, j.Progress.Bytes
	})
	if uerr != nil {
		s.log.Error("acceleration job", "job", key, "error", uerr)
		return
	}
	if err != nil {
		s.log.Warn("acceleration failed", "ref", j.Ref, "digest", j.Digest, "error", err)
	} else {
		s.log.Info("acceleration ready", "ref", j.Ref, "digest", j.Digest, "target", res.Target, "reused", res.Reused)
	}
	if j.Webhook != "" {
		s.notify(ctx, j)
	}
}

// bounded returns ctx bounded by ServiceOptions.ConvertTimeout.
func (s *Service) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return withBound(ctx, s.opts.ConvertTimeout, fmt.Errorf("accel: conversion not done within %v", s.opts.ConvertTimeout))
}

// withBound returns ctx ending after d (negative: not bounded), with
// cause as its context.Cause then.
func withBound(ctx context.Context, d time.Duration, cause error) (context.Context, context.CancelFunc) {
	if d < 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, d, cause)
}

// timedOut returns err of a conversion under ctx (from bounded) saying
// that it timed out, if it did.
func timedOut(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	return fmt.Errorf("%w (%v)", context.Cause(ctx), err)
}

// maxReason bounds a failed job's reason (Job.Error). Its error may quote
// the image, a media type or a file name its creator chose, of up to
// megabytes, and the reason is stored, shown by GetFunction and posted to
// webhooks.
const maxReason = 1 << 10

// reason returns err's text for Job.Error, cut at maxReason bytes.
func reason(err error) string {
	s := err.Error()
	if len(s) <= maxReason {
		return s
	}
	return fmt.Sprintf("%s... (%d more bytes)", strings.ToValidUTF8(s[:maxReason], ""), len(s)-maxReason)
}

// update changes a recorded job and returns it.
func (s *Service) update(key string, change func(*Job)) (Job, error) {
	var j Job
	err := s.db.Update(func(tx *bolt.Tx) error {
		ok, err := getJSON(jobs(tx), key, &j)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: job %s", ErrNotFound, key)
		}
		change(&j)
		j.Updated = s.opts.Now()
		return putJSON(jobs(tx), key, &j)
	})
	if err == nil {
		s.jobChanged()
	}
	return j, err
}

// keepIndexes stores indexes the registry refused, by layer digest: one
// index serves the layer in every repository (jobs.go).
func (s *Service) keepIndexes(ctx context.Context, source string, byLayer map[string][]byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for layer, data := range byLayer {
			if err := indexes(tx).Put([]byte(layer), data); err != nil {
				return err
			}
		}
		return nil
	})
}

// Index returns the serialized gzindex of a layer (by digest) that fcd
// keeps itself, for an image whose registry refused the index artifact
// (Result.Local); ErrNotFound otherwise.
func (s *Service) Index(ctx context.Context, layer string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		data := indexes(tx).Get([]byte(layer))
		if data == nil {
			return fmt.Errorf("%w: no index kept for layer %s", ErrNotFound, layer)
		}
		out = bytes.Clone(data)
		return nil
	})
	return out, err
}

// JobEvent is the body POSTed to a repository's webhook when a job ends.
type JobEvent struct {
	// Event is "acceleration.ready" or "acceleration.failed".
	Event string `json:"event"`
	Job   Job    `json:"job"`
}

// notify POSTs the job's end to its webhook, once; a failure is logged.
func (s *Service) notify(ctx context.Context, j Job) {
	ev := JobEvent{Event: "acceleration.ready", Job: j}
	if j.State == StateFailed {
		ev.Event = "acceleration.failed"
	}
	body, _ := json.Marshal(ev)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.Webhook, bytes.NewReader(body))
	if err != nil {
		s.log.Warn("acceleration webhook", "url", j.Webhook, "error", err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.opts.HTTPClient.Do(req)
	if err != nil {
		s.log.Warn("acceleration webhook", "url", j.Webhook, "error", err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		s.log.Warn("acceleration webhook", "url", j.Webhook, "status", resp.Status)
	}
}

// Rebake is told that the image with manifest digest source, or one
// converted from it, has a new start-up record. Start-up records are kept
// by digest, so every repository's job of source is concerned: each that
// is a Ready full-mode conversion made without a record is converted
// again ServiceOptions.RebakeDelay later, so that the record is baked
// into its prefetch order (before the landmark): a host without the
// record (another fcd sharing the registry, this one after its database
// was lost) then prefetches what the image reads at start-up. The image
// in use stays Ready meanwhile. scheduled reports whether a conversion
// was scheduled. It reads every job: records are made once per image, at
// its first lazy start.
func (s *Service) Rebake(ctx context.Context, source string) (scheduled bool, err error) {
	if s.opts.RebakeDelay < 0 {
		return false, nil
	}
	now := s.opts.Now()
	at := now.Add(s.opts.RebakeDelay)
	var keys []string
	err = s.db.Update(func(tx *bolt.Tx) error {
		due := map[string]Job{}
		err := eachJob(tx, func(k string, j Job) error {
			if j.Digest != source || j.State != StateReady || j.Mode != ModeFull || j.Result == nil || j.Result.StartupFiles > 0 || j.RebakeAt != nil {
				return nil
			}
			j.RebakeAt, j.Updated = &at, now
			due[k] = j
			return nil
		})
		if err != nil {
			return err
		}
		for k, j := range due {
			if err := putJSON(jobs(tx), k, &j); err != nil {
				return err
			}
			keys = append(keys, k)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	for _, k := range keys {
		s.log.Info("acceleration to be redone with the start-up record", "job", k, "at", at)
	}
	if len(keys) > 0 {
		s.poke()
	}
	return len(keys) > 0, nil
}

// rebake converts a Ready job again (Rebake). The job stays Ready with its
// Result until the conversion replaces it; a conversion that fails
// leaves it as it was, and one cut short by ctx is redone by the next Run.
func (s *Service) rebake(ctx context.Context, j Job) {
	s.log.Info("acceleration redone with the start-up record", "ref", j.Ref, "digest", j.Digest)
	cctx, cancel := s.bounded(ctx)
	defer cancel()
	res, err := s.conv.Convert(cctx, Request{Ref: j.Ref, Digest: j.Digest, Mode: j.Mode, Prefetch: j.Prefetch})
	if ctx.Err() != nil {
		return
	}
	err = timedOut(cctx, err)
	if err != nil {
		s.log.Warn("acceleration with the start-up record failed; the image converted without stays in use", "ref", j.Ref, "digest", j.Digest, "error", err)
	}
	_, uerr := s.update(j.Key(), func(j *Job) {
		j.RebakeAt = nil
		if err == nil {
			j.Result = &res
		}
	})
	if uerr != nil {
		s.log.Error("acceleration job", "job", j.Key(), "error", uerr)
		return
	}
	if err == nil {
		s.log.Info("acceleration ready with the start-up record", "ref", j.Ref, "digest", j.Digest, "target", res.Target, "files", res.StartupFiles)
	}
}
