package proxy

import (
	"net/http"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/fcd-dev/fcd/api"
)

// Aliases: CreateAlias, GetAlias, UpdateAlias, DeleteAlias, ListAliases.

func (s *Server) createAlias(ctx *fasthttp.RequestCtx, vs VersionStore, name string, body []byte) error {
	var in api.AliasInput
	if err := decodeJSON(body, &in); err != nil {
		return err
	}
	a, err := api.NewAlias(&in, s.opts.Now())
	if err != nil {
		return err
	}
	if err := vs.CreateAlias(ctx, name, a); err != nil {
		return versioningError(err)
	}
	if err := s.sync(ctx); err != nil {
		return err
	}
	return writeJSON(ctx, http.StatusOK, a)
}

func (s *Server) getAlias(ctx *fasthttp.RequestCtx, vs VersionStore, name, alias string) error {
	a, err := vs.GetAlias(ctx, name, alias)
	if err != nil {
		return versioningError(err)
	}
	return writeJSON(ctx, http.StatusOK, a)
}

func (s *Server) updateAlias(ctx *fasthttp.RequestCtx, vs VersionStore, name, alias string, body []byte) error {
	var in api.AliasInput
	if err := decodeJSON(body, &in); err != nil {
		return err
	}
	now := s.opts.Now()
	a, err := vs.UpdateAlias(ctx, name, alias, func(a *api.Alias) (*api.Alias, error) { return a.Update(&in, now) })
	if err != nil {
		return versioningError(err)
	}
	if err := s.sync(ctx); err != nil {
		return err
	}
	return writeJSON(ctx, http.StatusOK, a)
}

func (s *Server) deleteAlias(ctx *fasthttp.RequestCtx, vs VersionStore, name, alias string) error {
	if err := vs.DeleteAlias(ctx, name, alias); err != nil {
		return versioningError(err)
	}
	if err := s.sync(ctx); err != nil {
		return err
	}
	ctx.SetStatusCode(http.StatusNoContent)
	return nil
}

// aliasesPage is ListAliases' response.
type aliasesPage struct {
	Aliases   []*api.Alias `json:"aliases"`
	NextToken string       `json:"nextToken,omitempty"`
}

// listAliases serves ListAliases: names starting with prefix, in name
// order, from the name nextToken on.
func (s *Server) listAliases(ctx *fasthttp.RequestCtx, vs VersionStore, name string) error {
	q := ctx.QueryArgs()
	limit, aerr := listLimit(q.Peek("limit"))
	if aerr != nil {
		return aerr
	}
	prefix, start := string(q.Peek("prefix")), string(q.Peek("nextToken"))
	all, err := vs.ListAliases(ctx, name)
	if err != nil {
		return versioningError(err)
	}
	page := aliasesPage{Aliases: []*api.Alias{}}
	for _, a := range all {
		if !strings.HasPrefix(a.AliasName, prefix) || a.AliasName < start {
			continue
		}
		if len(page.Aliases) == limit {
			page.NextToken = a.AliasName
			break
		}
		page.Aliases = append(page.Aliases, a)
	}
	return writeJSON(ctx, http.StatusOK, page)
}
