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
	// ListProvisionConfigs pages through the configs in function name
	// order from start (inclusive); next starts the following page.
	ListProvisionConfigs(ctx context.Context, start string, limit int) (pcs []api.NamedProvisionConfig, next string, err error)
}

// StartErrors is what Pools may also tell: why the function's last start
// failed (nil after a success), for GetProvisionConfig's currentError.
type StartErrors interface {
	StartError(name string) error
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
	DefaultTarget int64 `json:"defaultTarget"`
	Target        int64 `json:"target"`
	Current       int64 `json:"current"`
	// CurrentError says why current is short of target: the last start's
	// error, while the last start failed.
	CurrentError string `json:"currentError,omitempty"`
	FunctionArn  string `json:"functionArn"`
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
	if err := api.CheckProvisionFields(body); err != nil {
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
	return writeJSON(ctx, http.StatusOK, s.provisionStatus(fn, target))
}

func (s *Server) provisionStatus(fn *api.Function, target int) provisionConfig {
	_, current := s.opts.Pools.Provisioned(fn.FunctionName)
	pc := provisionConfig{DefaultTarget: int64(target), Target: int64(target), Current: int64(current), FunctionArn: fn.FunctionArn}
	if se, ok := s.opts.Pools.(StartErrors); ok && current < target {
		if err := se.StartError(fn.FunctionName); err != nil {
			pc.CurrentError = err.Error()
		}
	}
	return pc
}

// provisionPage is ListProvisionConfigs' response body.
type provisionPage struct {
	ProvisionConfigs []provisionConfig `json:"provisionConfigs"`
	NextToken        string            `json:"nextToken,omitempty"`
}

// listProvisions serves ListProvisionConfigs: every function's config, or
// the one of functionName, paged by limit and nextToken.
func (s *Server) listProvisions(ctx *fasthttp.RequestCtx) error {
	ps, err := s.provisionStore()
	if err != nil {
		return err
	}
	q := ctx.QueryArgs()
	limit, aerr := listLimit(q.Peek("limit"))
	if aerr != nil {
		return aerr
	}
	page := provisionPage{ProvisionConfigs: []provisionConfig{}}
	var pcs []api.NamedProvisionConfig
	if name := string(q.Peek("functionName")); name != "" {
		pc, err := ps.GetProvisionConfig(ctx, name)
		if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
		if err == nil {
			pcs = append(pcs, api.NamedProvisionConfig{Function: name, ProvisionConfig: pc})
		}
	} else if pcs, page.NextToken, err = ps.ListProvisionConfigs(ctx, string(q.Peek("nextToken")), limit); err != nil {
		return err
	}
	for _, pc := range pcs {
		cf, err := s.fns.get(ctx, s.opts.Functions, pc.Function)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue // deleted since
		}
		if err != nil {
			return err
		}
		page.ProvisionConfigs = append(page.ProvisionConfigs, s.provisionStatus(cf.fn, pc.Target))
	}
	return writeJSON(ctx, http.StatusOK, page)
}
