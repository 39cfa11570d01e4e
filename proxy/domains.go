package proxy

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/containerd/errdefs"
	"github.com/valyala/fasthttp"

	"github.com/fcd-dev/fcd/api"
)

// Custom domains (FC's CreateCustomDomain and friends): a request whose
// Host is a custom domain goes to the function its route names, path and
// query unchanged, through that function's HTTP trigger (its methods and
// auth apply; without one the function has no HTTP endpoint, 404). fcd's
// own paths (/2023-03-30/, /fn/, /fcd/, /metrics) keep their meaning on
// every Host, so a custom domain that also names fcd's API endpoint does
// not hide the API.

// CustomDomainStore keeps custom domains (store.Store implements it).
type CustomDomainStore interface {
	CreateCustomDomain(ctx context.Context, d *api.CustomDomain) error
	GetCustomDomain(ctx context.Context, name string) (*api.CustomDomain, error)
	UpdateCustomDomain(ctx context.Context, name string, change func(*api.CustomDomain) (*api.CustomDomain, error)) (*api.CustomDomain, error)
	DeleteCustomDomain(ctx context.Context, name string) error
	// ListCustomDomains pages in name order; limit 0 means all.
	ListCustomDomains(ctx context.Context, prefix, start string, limit int) ([]*api.CustomDomain, string, error)
}

// FC's codes for custom domains.
const (
	CodeDomainNotFound      = "DomainNameNotFound"
	CodeDomainAlreadyExists = "DomainNameAlreadyExists"
)

// domainStore is where custom domains live: the function store, when it
// keeps them too (store.Store does).
func (s *Server) domainStore() (CustomDomainStore, error) {
	if ds, ok := s.opts.Functions.(CustomDomainStore); ok {
		return ds, nil
	}
	return nil, newError(http.StatusNotImplemented, "NotImplemented", "this fcd's store keeps no custom domains")
}

// domainCache holds every custom domain by name, loaded on first use and
// dropped on every change the store's watch reports (follow.go); domains
// are few and change rarely, and a Host that names none costs a map
// lookup.
type domainCache struct {
	mu  sync.Mutex // serializes loads
	m   atomic.Pointer[map[string]*api.CustomDomain]
	gen atomic.Uint64 // bumped by forget, so a load racing a change is not kept
}

func (c *domainCache) forget() {
	c.gen.Add(1)
	c.m.Store(nil)
}

func (c *domainCache) get(ctx context.Context, ds CustomDomainStore) (map[string]*api.CustomDomain, error) {
	if m := c.m.Load(); m != nil {
		return *m, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.m.Load(); m != nil {
		return *m, nil
	}
	gen := c.gen.Load()
	all, _, err := ds.ListCustomDomains(ctx, "", "", 0)
	if err != nil {
		return nil, err
	}
	m := make(map[string]*api.CustomDomain, len(all))
	for _, d := range all {
		m[d.DomainName] = d
	}
	if c.gen.Load() == gen {
		c.m.Store(&m)
	}
	return m, nil
}

// customDomain returns the custom domain host names, if any.
func (s *Server) customDomain(ctx context.Context, host []byte) *api.CustomDomain {
	ds, ok := s.opts.Functions.(CustomDomainStore)
	if !ok {
		return nil
	}
	m, err := s.domains.get(ctx, ds)
	if err != nil {
		s.log.Error("load custom domains", "error", err)
		return nil
	}
	if len(m) == 0 {
		return nil
	}
	if i := bytes.LastIndexByte(host, ':'); i >= 0 && bytes.IndexByte(host[i:], ']') < 0 {
		host = host[:i]
	}
	return m[strings.ToLower(string(host))]
}

// domainRequest routes a request to custom domain d.
func (s *Server) domainRequest(ctx *fasthttp.RequestCtx, rid string, d *api.CustomDomain) {
	r := d.Route(string(ctx.Path()))
	switch {
	case r == nil:
		writeError(ctx, rid, newError(http.StatusNotFound, CodePathNotFound, "custom domain "+d.DomainName+" has no route for "+string(ctx.Path())))
		return
	case !r.Allows(string(ctx.Method())):
		writeError(ctx, rid, newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "the route "+r.Path+" of "+d.DomainName+" does not accept "+string(ctx.Method())))
		return
	}
	s.metrics.invocations.Add(1)
	s.invoke(ctx, rid, r.FunctionName, invocation{controlPath: "/http-invoke", path: ctx.RequestURI(), routeQualifier: r.Qualifier})
}

// checkRouteQualifier checks a route's qualifier: LATEST, a version id or
// an alias name. Whether it exists is found when a request takes the
// route (404), as for a trigger's: versions and aliases come and go
// independently of the domain.
func checkRouteQualifier(q string) error {
	if q == "" {
		return nil
	}
	if err := api.ValidateQualifier(q); err != nil {
		return newError(http.StatusBadRequest, CodeInvalidArgument, "route qualifier "+strconv.Quote(q)+": "+err.Error())
	}
	return nil
}

// customDomainPage is ListCustomDomains' response body.
type customDomainPage struct {
	CustomDomains []*api.CustomDomain `json:"customDomains"`
	NextToken     string              `json:"nextToken,omitempty"`
}

// handleCustomDomains serves CreateCustomDomain, GetCustomDomain,
// UpdateCustomDomain, DeleteCustomDomain and ListCustomDomains.
func (s *Server) handleCustomDomains(ctx *fasthttp.RequestCtx, name, method string, body []byte) (err error) {
	ds, err := s.domainStore()
	if err != nil {
		return err
	}
	if method != http.MethodGet {
		defer func() {
			if err == nil {
				err = s.sync(ctx)
			}
		}()
	}
	now := s.opts.Now()
	switch {
	case name == "" && method == http.MethodPost:
		in, err := api.DecodeCustomDomainInput(body)
		if err != nil {
			return err
		}
		d, err := api.NewCustomDomain(in, s.opts.AccountID, now)
		if err != nil {
			return err
		}
		if err := s.checkDomain(d); err != nil {
			return err
		}
		if err := ds.CreateCustomDomain(ctx, d); err != nil {
			return domainError(err)
		}
		return writeJSON(ctx, http.StatusOK, d)
	case name == "" && method == http.MethodGet:
		q := ctx.QueryArgs()
		limit, aerr := listLimit(q.Peek("limit"))
		if aerr != nil {
			return aerr
		}
		page := customDomainPage{}
		page.CustomDomains, page.NextToken, err = ds.ListCustomDomains(ctx, string(q.Peek("prefix")), string(q.Peek("nextToken")), limit)
		if err != nil {
			return err
		}
		if page.CustomDomains == nil {
			page.CustomDomains = []*api.CustomDomain{}
		}
		return writeJSON(ctx, http.StatusOK, page)
	case name != "" && method == http.MethodGet:
		d, err := ds.GetCustomDomain(ctx, strings.ToLower(name))
		if err != nil {
			return domainError(err)
		}
		return writeJSON(ctx, http.StatusOK, d)
	case name != "" && method == http.MethodPut:
		in, err := api.DecodeCustomDomainInput(body)
		if err != nil {
			return err
		}
		d, err := ds.UpdateCustomDomain(ctx, strings.ToLower(name), func(d *api.CustomDomain) (*api.CustomDomain, error) {
			n, err := d.Update(in, now)
			if err != nil {
				return nil, err
			}
			return n, s.checkDomain(n)
		})
		if err != nil {
			return domainError(err)
		}
		return writeJSON(ctx, http.StatusOK, d)
	case name != "" && method == http.MethodDelete:
		if err := ds.DeleteCustomDomain(ctx, strings.ToLower(name)); err != nil {
			return domainError(err)
		}
		ctx.SetStatusCode(http.StatusNoContent)
		return nil
	default:
		return newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, method+" is not allowed on "+string(ctx.Path()))
	}
}

// checkDomain refuses what this fcd cannot route: a name its HTTP trigger
// hosts already use, a qualifier beyond LATEST.
func (s *Server) checkDomain(d *api.CustomDomain) error {
	if strings.HasSuffix("."+d.DomainName, s.hostSuffix) {
		return newError(http.StatusBadRequest, CodeInvalidArgument, "domainName "+d.DomainName+" is under "+s.opts.Domain+", which fcd uses for HTTP trigger hosts (<function>."+s.opts.Domain+")")
	}
	if d.RouteConfig == nil {
		return nil
	}
	for _, r := range d.RouteConfig.Routes {
		if err := checkRouteQualifier(r.Qualifier); err != nil {
			return err
		}
	}
	return nil
}

func domainError(err error) error {
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		return newError(http.StatusNotFound, CodeDomainNotFound, err.Error())
	case errors.Is(err, errdefs.ErrAlreadyExists):
		return newError(http.StatusConflict, CodeDomainAlreadyExists, err.Error())
	}
	return err
}
