package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/containerd/errdefs"
	"github.com/valyala/fasthttp"

	"github.com/fcd-dev/fcd/api"
)

// Pools is what the store's watch tells the scheduler (follow.go): a
// function's configuration changed or it is gone (its instances drain),
// and how many instances to keep warm.
type Pools interface {
	// Update drains instances of fn's previous configuration.
	Update(fn *api.Function)
	// Remove drains and stops every instance of the named function.
	Remove(name string)
	// SetProvisioned keeps target instances of fn warm (0: none).
	SetProvisioned(fn *api.Function, target int)
	// Provisioned reports the target and how many instances run for it.
	Provisioned(name string) (target, current int)
}

// ProvisionStore keeps provisioned targets across restarts.
type ProvisionStore interface {
	PutProvisionConfig(ctx context.Context, name string, pc api.ProvisionConfig) error
	GetProvisionConfig(ctx context.Context, name string) (api.ProvisionConfig, error)
	DeleteProvisionConfig(ctx context.Context, name string) error
}

// MaxProvisionTarget bounds defaultTarget on one host.
const MaxProvisionTarget = 100

// provisionInput is PutProvisionConfig's body.
type provisionInput struct {
	DefaultTarget *int64 `json:"defaultTarget"`
	Target        *int64 `json:"target"`
}

// provisionConfig is FC's ProvisionConfig response.
type provisionConfig struct {
	DefaultTarget int64  `json:"defaultTarget"`
	Target        int64  `json:"target"`
	Current       int64  `json:"current"`
	FunctionArn   string `json:"functionArn"`
}

func (s *Server) provisionStore() (ProvisionStore, error) {
	ps := s.opts.Provision
	if ps == nil || s.opts.Pools == nil {
		return nil, newError(http.StatusNotImplemented, "NotImplemented", "this fcd has no scheduler: provisioned instances are not available")
	}
	return ps, nil
}

func (s *Server) putProvision(ctx *fasthttp.RequestCtx, name string, body []byte) error {
	ps, err := s.provisionStore()
	if err != nil {
		return err
	}
	var in provisionInput
	if err := decodeJSON(body, &in); err != nil {
		return err
	}
	target := in.DefaultTarget
	if target == nil {
		target = in.Target
	}
	if target == nil || *target < 0 || *target > MaxProvisionTarget {
		return newError(http.StatusBadRequest, CodeInvalidArgument, fmt.Sprintf("defaultTarget is required and must be between 0 and %d", MaxProvisionTarget))
	}
	cf, err := s.fns.get(ctx, s.opts.Functions, name)
	if err != nil {
		return err
	}
	if err := ps.PutProvisionConfig(ctx, name, api.ProvisionConfig{Target: int(*target)}); err != nil {
		return err
	}
	if err := s.sync(ctx); err != nil {
		return err
	}
	return s.writeProvision(ctx, cf.fn, int(*target))
}

func (s *Server) getProvision(ctx *fasthttp.RequestCtx, name string) error {
	ps, err := s.provisionStore()
	if err != nil {
		return err
	}
	cf, err := s.fns.get(ctx, s.opts.Functions, name)
	if err != nil {
		return err
	}
	pc, err := ps.GetProvisionConfig(ctx, name)
	if errors.Is(err, errdefs.ErrNotFound) {
		return newError(http.StatusNotFound, CodeProvisionNotFound, fmt.Sprintf("function %q has no provision config", name))
	}
	if err != nil {
		return err
	}
	return s.writeProvision(ctx, cf.fn, pc.Target)
}

func (s *Server) deleteProvision(ctx *fasthttp.RequestCtx, name string) error {
	ps, err := s.provisionStore()
	if err != nil {
		return err
	}
	if _, err := s.fns.get(ctx, s.opts.Functions, name); err != nil {
		return err
	}
	if err := ps.DeleteProvisionConfig(ctx, name); err != nil {
		return err
	}
	if err := s.sync(ctx); err != nil {
		return err
	}
	ctx.SetStatusCode(http.StatusNoContent)
	return nil
}

func (s *Server) writeProvision(ctx *fasthttp.RequestCtx, fn *api.Function, target int) error {
	_, current := s.opts.Pools.Provisioned(fn.FunctionName)
	return writeJSON(ctx, http.StatusOK, provisionConfig{
		DefaultTarget: int64(target), Target: int64(target), Current: int64(current), FunctionArn: fn.FunctionArn,
	})
}
