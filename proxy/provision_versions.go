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

// Provision configs of versions and aliases (PutProvisionConfig and
// friends with ?qualifier=): the instances kept warm are those of the
// version the qualifier names, for an alias its main version (the one
// versionId names). Targets of several qualifiers naming one version add
// up. The scheduler learns of them as the store's watch reports changes
// to these configs, to aliases and to versions (reprovision).

// isQualified reports whether a request names a qualifier other than
// LATEST.
func isQualified(ctx *fasthttp.RequestCtx) bool {
	q := string(ctx.QueryArgs().Peek("qualifier"))
	return q != "" && q != api.QualifierLatest
}

func (s *Server) qualifiedProvision(ctx *fasthttp.RequestCtx, name, method string, body []byte) error {
	vs, err := s.versionStore()
	if err != nil {
		return err
	}
	if _, err := s.provisionStore(); err != nil || s.opts.VersionPools == nil {
		return newError(http.StatusNotImplemented, "NotImplemented", "this fcd has no scheduler: provisioned instances are not available")
	}
	qualifier := string(ctx.QueryArgs().Peek("qualifier"))
	if err := api.ValidateQualifier(qualifier); err != nil {
		return err
	}
	f, err := s.opts.Functions.GetFunction(ctx, name)
	if err != nil {
		return err
	}
	switch method {
	case http.MethodPut:
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
		if err := vs.PutQualifiedProvision(ctx, name, qualifier, api.ProvisionConfig{Target: int(*target)}); err != nil {
			return versioningError(err)
		}
		if err := s.sync(ctx); err != nil {
			return err
		}
		return s.writeQualifiedProvision(ctx, vs, f, qualifier, int(*target))
	case http.MethodGet:
		pc, err := vs.GetQualifiedProvision(ctx, name, qualifier)
		if errdefs.IsNotFound(err) {
			return newError(http.StatusNotFound, CodeProvisionNotFound, fmt.Sprintf("function %q has no provision config for qualifier %q", name, qualifier))
		}
		if err != nil {
			return err
		}
		return s.writeQualifiedProvision(ctx, vs, f, qualifier, pc.Target)
	case http.MethodDelete:
		if err := vs.DeleteQualifiedProvision(ctx, name, qualifier); err != nil {
			return err
		}
		if err := s.sync(ctx); err != nil {
			return err
		}
		ctx.SetStatusCode(http.StatusNoContent)
		return nil
	default:
		return newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, method+" is not allowed on "+string(ctx.Path()))
	}
}

// writeQualifiedProvision answers with the config and how many instances
// of the version it names are ready.
func (s *Server) writeQualifiedProvision(ctx *fasthttp.RequestCtx, vs VersionStore, f *api.Function, qualifier string, target int) error {
	version, err := s.qualifiedVersion(ctx, vs, f.FunctionName, qualifier)
	if err != nil {
		return versioningError(err)
	}
	_, current := s.opts.VersionPools.ProvisionedVersion(f.FunctionName, version)
	return writeJSON(ctx, http.StatusOK, provisionConfig{
		DefaultTarget: int64(target), Target: int64(target), Current: int64(current), FunctionArn: f.FunctionArn + "/" + qualifier,
	})
}

// qualifiedVersion returns the version a qualifier keeps warm.
func (s *Server) qualifiedVersion(ctx context.Context, vs VersionStore, function, qualifier string) (string, error) {
	if api.IsVersionID(qualifier) {
		return qualifier, nil
	}
	a, err := vs.GetAlias(ctx, function, qualifier)
	if err != nil {
		return "", err
	}
	return a.VersionID, nil
}

// reprovisionAll applies every stored qualified provision config, when
// the proxy starts following the store.
func (s *Server) reprovisionAll(ctx context.Context) {
	vs := s.opts.Versions
	if vs == nil || s.opts.Pools == nil {
		return
	}
	all, err := vs.QualifiedProvisions(ctx)
	if err != nil {
		s.log.Error("read provision configs of versions", "error", err)
		return
	}
	for fn, pcs := range all {
		s.reprovisionWith(ctx, fn, pcs)
	}
}

// reprovision brings the provisioned targets of a function's version
// pools up to its qualified provision configs.
func (s *Server) reprovision(ctx context.Context, fn string) {
	vs := s.opts.Versions
	if vs == nil || s.opts.Pools == nil {
		return
	}
	all, err := vs.QualifiedProvisions(ctx)
	if err != nil {
		s.log.Error("read provision configs of versions", "function", fn, "error", err)
		return
	}
	s.reprovisionWith(ctx, fn, all[fn])
}

func (s *Server) reprovisionWith(ctx context.Context, fn string, pcs map[string]api.ProvisionConfig) {
	vs := s.opts.Versions
	targets := map[string]int{}
	for q, pc := range pcs {
		v, err := s.qualifiedVersion(ctx, vs, fn, q)
		if err != nil {
			continue // its alias is gone: so is the config, by its own event
		}
		targets[v] += pc.Target
	}
	prev := s.vc.provisioned[fn]
	for v, n := range targets {
		s.setVersionProvisioned(ctx, fn, v, n)
	}
	for v := range prev {
		if _, ok := targets[v]; !ok {
			s.setVersionProvisioned(ctx, fn, v, 0)
		}
	}
	if s.vc.provisioned == nil {
		s.vc.provisioned = map[string]map[string]int{}
	}
	if len(targets) == 0 {
		delete(s.vc.provisioned, fn)
	} else {
		s.vc.provisioned[fn] = targets
	}
}

func (s *Server) setVersionProvisioned(ctx context.Context, fn, version string, target int) {
	_, f, err := s.opts.Versions.GetVersion(ctx, fn, version)
	if err != nil {
		if !errors.Is(err, api.ErrVersionNotFound) && !errdefs.IsNotFound(err) {
			s.log.Error("read version to provision", "function", fn, "version", version, "error", err)
		}
		return // deleted: its pool is drained (RemoveVersion)
	}
	f.VersionID = version
	s.opts.Pools.SetProvisioned(f, target)
}
