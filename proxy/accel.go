package proxy

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/valyala/fasthttp"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/puller/accel"
)

// Image acceleration, fcd's own API under /fcd/v1/acceleration/, signed
// like every call:
//
//	POST /fcd/v1/acceleration/jobs                 start {"image","mode","prefetch"}; 202 and the job
//	GET  /fcd/v1/acceleration/jobs                 list jobs
//	GET  /fcd/v1/acceleration/jobs/{image}         a job by tag, repo@digest (its key), or digest alone when one repository has a job of it (path-escaped)
//	PUT  /fcd/v1/acceleration/repositories/{repo}  set a repository's setting {"enabled","mode","prefetch","webhook"}
//	GET  /fcd/v1/acceleration/repositories[/{repo}]

// Accelerator converts images and reports their acceleration state
// (puller/accel.Service).
type Accelerator interface {
	Accelerate(ctx context.Context, req accel.Request) (accel.Job, error)
	Job(ctx context.Context, ref string) (accel.Job, error)
	Jobs(ctx context.Context) ([]accel.Job, error)
	SetSettings(ctx context.Context, set accel.Settings) (accel.Settings, error)
	Settings(ctx context.Context, repository string) (accel.Settings, error)
	AllSettings(ctx context.Context) ([]accel.Settings, error)
	// FunctionStatus reads records only; it must not block on I/O.
	FunctionStatus(image string, accelerated bool) accel.Status
}

var _ Accelerator = (*accel.Service)(nil)

// resolveTimeout bounds the registry lookup of a conversion request.
const resolveTimeout = 30 * time.Second

// CodeAccelerationNotFound is the error code for a job or repository
// setting that does not exist.
const CodeAccelerationNotFound = "AccelerationNotFound"

// AccelerateInput is the body of POST /fcd/v1/acceleration/jobs.
type AccelerateInput struct {
	Image    string     `json:"image"`
	Mode     accel.Mode `json:"mode"`
	Prefetch []string   `json:"prefetch,omitempty"`
}

// JobList is the body of GET /fcd/v1/acceleration/jobs.
type JobList struct {
	Jobs []accel.Job `json:"jobs"`
}

// SettingsList is the body of GET /fcd/v1/acceleration/repositories.
type SettingsList struct {
	Repositories []accel.Settings `json:"repositories"`
}

// handleAcceleration routes /fcd/v1/acceleration/{rest}.
func (s *Server) handleAcceleration(ctx *fasthttp.RequestCtx, rest, method string, body []byte) error {
	if s.opts.Accelerator == nil {
		return newError(http.StatusNotImplemented, "NotImplemented", "this fcd does not accelerate images")
	}
	kind, arg, _ := strings.Cut(rest, "/")
	arg = unescape(arg)
	var err error
	switch {
	case kind == "jobs" && arg == "" && method == http.MethodPost:
		err = s.startAcceleration(ctx, body)
	case kind == "jobs" && arg == "" && method == http.MethodGet:
		err = s.listAccelerationJobs(ctx)
	case kind == "jobs" && method == http.MethodGet:
		err = s.getAccelerationJob(ctx, arg)
	case kind == "repositories" && arg != "" && method == http.MethodPut:
		err = s.putAccelerationSettings(ctx, arg, body)
	case kind == "repositories" && arg != "" && method == http.MethodGet:
		err = s.getAccelerationSettings(ctx, arg)
	case kind == "repositories" && method == http.MethodGet:
		err = s.listAccelerationSettings(ctx)
	case kind == "jobs" || kind == "repositories":
		return newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, method+" is not allowed on "+string(ctx.Path()))
	default:
		return newError(http.StatusNotFound, CodePathNotFound, "no API at "+string(ctx.Path()))
	}
	if errdefs.IsPermissionDenied(err) {
		return newError(http.StatusForbidden, CodeAccessDenied, err.Error())
	}
	if err != nil {
		return toAPIError(err, CodeAccelerationNotFound)
	}
	return nil
}

func (s *Server) startAcceleration(ctx *fasthttp.RequestCtx, body []byte) error {
	var in AccelerateInput
	if err := decodeJSON(body, &in); err != nil {
		return err
	}
	if in.Image == "" {
		return newError(http.StatusBadRequest, CodeInvalidArgument, "image is required")
	}
	if in.Mode == "" {
		in.Mode = accel.ModeFull
	}
	// Accelerate asks the registry for the image's digest. fasthttp does
	// not cancel on disconnect, and its RequestCtx must not reach the HTTP
	// client's goroutines: bound the call on the serving context instead.
	rctx, cancel := context.WithTimeout(s.ctx, resolveTimeout)
	defer cancel()
	job, err := s.opts.Accelerator.Accelerate(rctx, accel.Request{Ref: in.Image, Mode: in.Mode, Prefetch: in.Prefetch})
	if err != nil {
		return err
	}
	return writeJSON(ctx, http.StatusAccepted, job)
}

func (s *Server) getAccelerationJob(ctx *fasthttp.RequestCtx, ref string) error {
	job, err := s.opts.Accelerator.Job(ctx, ref)
	if err != nil {
		return err
	}
	return writeJSON(ctx, http.StatusOK, job)
}

func (s *Server) listAccelerationJobs(ctx *fasthttp.RequestCtx) error {
	jobs, err := s.opts.Accelerator.Jobs(ctx)
	if err != nil {
		return err
	}
	if jobs == nil {
		jobs = []accel.Job{}
	}
	return writeJSON(ctx, http.StatusOK, JobList{Jobs: jobs})
}

func (s *Server) putAccelerationSettings(ctx *fasthttp.RequestCtx, repo string, body []byte) error {
	var set accel.Settings
	if err := decodeJSON(body, &set); err != nil {
		return err
	}
	set.Repository = repo
	set, err := s.opts.Accelerator.SetSettings(ctx, set)
	if err != nil {
		return err
	}
	return writeJSON(ctx, http.StatusOK, set)
}

func (s *Server) getAccelerationSettings(ctx *fasthttp.RequestCtx, repo string) error {
	set, err := s.opts.Accelerator.Settings(ctx, repo)
	if err != nil {
		return err
	}
	return writeJSON(ctx, http.StatusOK, set)
}

func (s *Server) listAccelerationSettings(ctx *fasthttp.RequestCtx) error {
	all, err := s.opts.Accelerator.AllSettings(ctx)
	if err != nil {
		return err
	}
	if all == nil {
		all = []accel.Settings{}
	}
	return writeJSON(ctx, http.StatusOK, SettingsList{Repositories: all})
}

// decorateAcceleration fills accelerationInfo, the ImageOptimizing reason
// and resolvedImageUri from the image's conversion job. Without an
// Accelerator, a function asking for acceleration reports Preparing, which
// means it runs its original image.
func (s *Server) decorateAcceleration(f *api.Function) {
	cc := f.CustomContainerConfig
	wants := cc.AccelerationType == api.AccelerationDefault
	if s.opts.Accelerator == nil {
		if wants && cc.AccelerationInfo == nil {
			cc.AccelerationInfo = &api.AccelerationInfo{Status: api.AccelerationPreparing}
		}
		return
	}
	st := s.opts.Accelerator.FunctionStatus(cc.Image, wants)
	if st.ResolvedImage != "" {
		cc.ResolvedImageURI = st.ResolvedImage
	}
	if !wants {
		return
	}
	cc.AccelerationInfo = &api.AccelerationInfo{Status: string(st.State)}
	switch st.State {
	case accel.StatePreparing:
		f.LastUpdateStatusReasonCode = api.ReasonImageOptimizing
	case accel.StateFailed:
		f.LastUpdateStatusReason = "image acceleration failed: " + st.Reason
	}
}
