package proxy

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fcd-dev/fcd/api"
)

// Versions and qualifiers. A qualifier names what an invocation runs:
// LATEST (or none), the function's current configuration; a version id, a
// published snapshot of it; an alias, a version it points to, chosen per
// request by the alias's weights. Each version has instances of its own
// (the scheduler keys its pools by function and version), and the instance
// sees the qualifier and the version in x-fc-qualifier and x-fc-version-id.

// VersionStore is what versions, aliases, reserved concurrency and the
// invocation switch need of the metadata store. Errors: api.ErrVersionNotFound,
// api.ErrAliasNotFound, api.ErrAliasExists, api.ErrVersionInUse, and
// errdefs categories as FunctionStore's.
type VersionStore interface {
	PublishVersion(ctx context.Context, function, description string, now time.Time) (*api.FunctionVersion, error)
	GetVersion(ctx context.Context, function, id string) (*api.FunctionVersion, *api.Function, error)
	ListVersions(ctx context.Context, function string) ([]*api.FunctionVersion, error)
	DeleteVersion(ctx context.Context, function, id string) error

	CreateAlias(ctx context.Context, function string, a *api.Alias) error
	GetAlias(ctx context.Context, function, name string) (*api.Alias, error)
	UpdateAlias(ctx context.Context, function, name string, change func(*api.Alias) (*api.Alias, error)) (*api.Alias, error)
	DeleteAlias(ctx context.Context, function, name string) error
	ListAliases(ctx context.Context, function string) ([]*api.Alias, error)

	PutConcurrencyConfig(ctx context.Context, function string, cc api.ConcurrencyConfig) error
	GetConcurrencyConfig(ctx context.Context, function string) (api.ConcurrencyConfig, error)
	DeleteConcurrencyConfig(ctx context.Context, function string) error
	ConcurrencyConfigs(ctx context.Context) (map[string]api.ConcurrencyConfig, error)

	SetInvocationRestriction(ctx context.Context, function string, r *api.InvocationRestriction) error
	InvocationRestriction(ctx context.Context, function string) (*api.InvocationRestriction, error)

	PutQualifiedProvision(ctx context.Context, function, qualifier string, pc api.ProvisionConfig) error
	GetQualifiedProvision(ctx context.Context, function, qualifier string) (api.ProvisionConfig, error)
	DeleteQualifiedProvision(ctx context.Context, function, qualifier string) error
	QualifiedProvisions(ctx context.Context) (map[string]map[string]api.ProvisionConfig, error)
}

// VersionPools is what versioning needs of the scheduler beyond Pools.
type VersionPools interface {
	// RemoveVersion drains the instances of a deleted version.
	RemoveVersion(function, version string)
	// SetConcurrencyLimit caps a function's concurrent requests over all
	// its versions; a negative max lifts the cap.
	SetConcurrencyLimit(function string, max int)
	// Instances lists the function's instances, every version.
	Instances(function string) []InstanceInfo
	// ProvisionedVersion is Pools.Provisioned for a version.
	ProvisionedVersion(function, version string) (target, current int)
}

// InstanceInfo is one instance as ListInstances reports it.
type InstanceInfo struct {
	ID string
	// VersionID is the version it runs, "" for LATEST.
	VersionID string
	Created   time.Time
	Busy      int
	Draining  bool
}

// FC codes of versioning.
const (
	CodeVersionNotFound    = "VersionNotFound"    // 404
	CodeAliasNotFound      = "AliasNotFound"      // 404
	CodeAliasAlreadyExists = "AliasAlreadyExists" // 409
	// CodeVersionInUse answers DeleteFunctionVersion of a version an
	// alias routes to (409).
	CodeVersionInUse = "VersionInUse"
	// CodeVersionPublishError answers PublishFunctionVersion when nothing
	// changed since the newest version (400), with a message that starts
	// "No changes were made since last publish", as FC's does: deploy
	// tools match on both.
	CodeVersionPublishError = "VersionPublishError"
)

// versioningError maps the store's versioning errors to FC's; others as
// toAPIError with FunctionNotFound.
func versioningError(err error) *apiError {
	switch {
	case errors.Is(err, api.ErrVersionNotFound):
		return newError(http.StatusNotFound, CodeVersionNotFound, err.Error())
	case errors.Is(err, api.ErrAliasNotFound):
		return newError(http.StatusNotFound, CodeAliasNotFound, err.Error())
	case errors.Is(err, api.ErrAliasExists):
		return newError(http.StatusConflict, CodeAliasAlreadyExists, err.Error())
	case errors.Is(err, api.ErrVersionUnchanged):
		msg := err.Error()
		return newError(http.StatusBadRequest, CodeVersionPublishError, strings.ToUpper(msg[:1])+msg[1:])
	case errors.Is(err, api.ErrVersionInUse):
		return newError(http.StatusConflict, CodeVersionInUse, err.Error()+": update or delete the alias first")
	default:
		return toAPIError(err, CodeFunctionNotFound)
	}
}

// versionCache keeps what qualifiers resolve to, so that a warm qualified
// invocation does no store read. The store's watch keeps it exact
// (applyVersioning): a change to a function, its triggers, versions,
// aliases or invocation switch forgets what it touched.
type versionCache struct {
	mu           sync.RWMutex
	gen          uint64
	versions     map[string]*cachedFunction // "<fn>/<id>"
	aliases      map[string]*api.Alias      // "<fn>/<alias>"
	restrictions map[string]*api.InvocationRestriction

	// provisioned is the provisioned target last given to each version
	// pool (function -> version -> target), by qualified provision
	// configs. Only the follow goroutine touches it.
	provisioned map[string]map[string]int
}

// The lookups return the cache's generation with a miss, for keep. They
// are typed and closure-free: restriction runs on every invocation.

func (c *versionCache) version(key string) (*cachedFunction, bool, uint64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	cf, ok := c.versions[key]
	return cf, ok, c.gen
}

func (c *versionCache) alias(key string) (*api.Alias, bool, uint64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	a, ok := c.aliases[key]
	return a, ok, c.gen
}

func (c *versionCache) restriction(name string) (*api.InvocationRestriction, bool, uint64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	r, ok := c.restrictions[name]
	return r, ok, c.gen
}

// keep stores a filled entry unless something was forgotten since gen.
func (c *versionCache) keep(gen uint64, put func(*versionCache)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if c.versions == nil {
		c.versions = map[string]*cachedFunction{}
		c.aliases = map[string]*api.Alias{}
		c.restrictions = map[string]*api.InvocationRestriction{}
	}
	put(c)
}

func (c *versionCache) forget(drop func(*versionCache)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	drop(c)
	c.gen++
}

func (c *versionCache) forgetFunction(name string) {
	c.forget(func(c *versionCache) {
		prefix := name + "/"
		for k := range c.versions {
			if strings.HasPrefix(k, prefix) {
				delete(c.versions, k)
			}
		}
		for k := range c.aliases {
			if strings.HasPrefix(k, prefix) {
				delete(c.aliases, k)
			}
		}
		delete(c.restrictions, name)
	})
}

// version returns the cached frozen configuration of a version; latest
// is the function's current entry, whose HTTP trigger it shares.
func (s *Server) version(ctx context.Context, latest *cachedFunction, name, id string) (*cachedFunction, error) {
	key := name + "/" + id
	cached, ok, gen := s.vc.version(key)
	if ok {
		return cached, nil
	}
	_, f, err := s.opts.Versions.GetVersion(ctx, name, id)
	if err != nil {
		return nil, err
	}
	f.VersionID = id
	cf := &cachedFunction{fn: f, memory: strconv.Itoa(int(f.MemorySize)), deadline: time.Duration(f.Timeout) * time.Second,
		http: latest.http, triggerQualifier: latest.triggerQualifier}
	s.vc.keep(gen, func(c *versionCache) { c.versions[key] = cf })
	return cf, nil
}

func (s *Server) alias(ctx context.Context, name, alias string) (*api.Alias, error) {
	key := name + "/" + alias
	cached, ok, gen := s.vc.alias(key)
	if ok {
		return cached, nil
	}
	a, err := s.opts.Versions.GetAlias(ctx, name, alias)
	if err != nil {
		return nil, err
	}
	s.vc.keep(gen, func(c *versionCache) { c.aliases[key] = a })
	return a, nil
}

// restriction returns the function's invocation switch, nil when
// invocations are enabled.
func (s *Server) restriction(ctx context.Context, name string) (*api.InvocationRestriction, error) {
	if s.opts.Versions == nil {
		return nil, nil
	}
	cached, ok, gen := s.vc.restriction(name)
	if ok {
		return cached, nil
	}
	r, err := s.opts.Versions.InvocationRestriction(ctx, name)
	if err != nil {
		return nil, err
	}
	s.vc.keep(gen, func(c *versionCache) { c.restrictions[name] = r })
	return r, nil
}

// headerQualifier is InvokeFunction's qualifier header; the query
// parameter qualifier, which the SDK sends, takes precedence.
const headerQualifier = "x-fc-qualifier"

// CodeFunctionDisabled answers an invocation of a function whose
// invocations are disabled (DisableFunctionInvocation), 403.
const CodeFunctionDisabled = "FunctionDisabled"

// target resolves the function and qualifier an invocation runs, and sets
// inv.qualifier to what the instance is told. InvokeFunction's qualifier
// comes from ?qualifier= or x-fc-qualifier, an HTTP trigger's from the
// trigger. Errors are *apiError.
func (s *Server) target(ctx *fasthttp.RequestCtx, name string, inv *invocation) (*cachedFunction, error) {
	latest := inv.cached
	if latest == nil {
		var err error
		if latest, err = s.fns.get(ctx, s.opts.Functions, name); err != nil {
			return nil, toAPIError(err, CodeFunctionNotFound)
		}
	}
	var q string
	switch {
	case inv.routeQualifier != "":
		q = inv.routeQualifier
	case inv.controlPath != "/invoke":
		q = latest.triggerQualifier
	case inv.async != nil:
		// An async event's alias is resolved when each attempt runs, as
		// every synchronous invocation of it is (async.Event.Qualifier).
		q = inv.async.qualifier
	default:
		q = requestQualifier(ctx)
	}
	if err := s.checkEnabled(ctx, name); err != nil {
		return nil, err
	}
	cf, qualifier, err := s.resolve(ctx, latest, name, q)
	inv.qualifier = qualifier
	return cf, err
}

// checkEnabled refuses an invocation of a function whose invocations are
// disabled (DisableFunctionInvocation). Errors are *apiError.
func (s *Server) checkEnabled(ctx context.Context, name string) error {
	r, err := s.restriction(ctx, name)
	if err != nil {
		return toAPIError(err, CodeFunctionNotFound)
	}
	if r != nil && r.Disable {
		msg := "invocations of function " + name + " are disabled"
		if r.Reason != "" {
			msg += ": " + r.Reason
		}
		return newError(http.StatusForbidden, CodeFunctionDisabled, msg)
	}
	return nil
}

// resolve returns the configuration qualifier names: LATEST's is latest,
// an alias's a version chosen by its weights. Errors are *apiError.
func (s *Server) resolve(ctx context.Context, latest *cachedFunction, name, qualifier string) (*cachedFunction, string, error) {
	if qualifier == "" || qualifier == api.QualifierLatest {
		return latest, api.QualifierLatest, nil
	}
	if err := api.ValidateQualifier(qualifier); err != nil {
		return nil, "", toAPIError(err, CodeFunctionNotFound)
	}
	if s.opts.Versions == nil {
		return nil, "", newError(http.StatusNotFound, CodeVersionNotFound, "this fcd keeps no versions: qualifier "+strconv.Quote(qualifier)+" does not exist")
	}
	id := qualifier
	if !api.IsVersionID(qualifier) {
		a, err := s.alias(ctx, name, qualifier)
		if err != nil {
			return nil, "", versioningError(err)
		}
		id = a.Pick(rand.Float64())
	}
	cf, err := s.version(ctx, latest, name, id)
	if err != nil {
		return nil, "", versioningError(err)
	}
	return cf, qualifier, nil
}

// applyVersioning brings the version cache and the scheduler's version
// pools and limits up to e.
func (s *Server) applyVersioning(ctx context.Context, e api.Event) {
	vp := s.opts.VersionPools
	switch e.Kind {
	case api.KindFunction, api.KindTrigger:
		s.vc.forgetFunction(e.Function)
		if e.Kind == api.KindFunction && e.Op == api.OpDelete {
			delete(s.vc.provisioned, e.Function) // its pools are removed
			if vp != nil {
				vp.SetConcurrencyLimit(e.Function, -1)
			}
		}
	case api.KindVersion:
		if e.Op == api.OpDelete {
			key := e.Function + "/" + e.Qualifier
			s.vc.forget(func(c *versionCache) { delete(c.versions, key) })
			if vp != nil {
				vp.RemoveVersion(e.Function, e.Qualifier)
			}
		}
	case api.KindAlias:
		key := e.Function + "/" + e.Qualifier
		s.vc.forget(func(c *versionCache) { delete(c.aliases, key) })
		s.reprovision(ctx, e.Function)
	case api.KindQualifiedProvision:
		s.reprovision(ctx, e.Function)
	case api.KindRestriction:
		s.vc.forget(func(c *versionCache) { delete(c.restrictions, e.Function) })
	case api.KindConcurrency:
		if vp == nil {
			return
		}
		if e.Op == api.OpPut {
			vp.SetConcurrencyLimit(e.Function, int(e.ConcurrencyValue.ReservedConcurrency))
		} else {
			vp.SetConcurrencyLimit(e.Function, -1)
		}
	}
}

// versionStore returns the store of the versioning APIs, or 501.
func (s *Server) versionStore() (VersionStore, error) {
	if s.opts.Versions == nil {
		return nil, newError(http.StatusNotImplemented, "NotImplemented", "this fcd keeps no versions, aliases or concurrency configs")
	}
	return s.opts.Versions, nil
}

// handleVersioning routes /functions/{name}/{versions,aliases,concurrency,
// invoke,instances}[/{sub}].
func (s *Server) handleVersioning(ctx *fasthttp.RequestCtx, name, sub, subName, method string, body []byte) error {
	vs, err := s.versionStore()
	if err != nil {
		return err
	}
	switch {
	case sub == "versions" && subName == "" && method == http.MethodPost:
		return s.publishVersion(ctx, vs, name, body)
	case sub == "versions" && subName == "" && method == http.MethodGet:
		return s.listVersions(ctx, vs, name)
	case sub == "versions" && subName != "" && method == http.MethodDelete:
		return s.deleteVersion(ctx, vs, name, subName)
	case sub == "aliases" && subName == "" && method == http.MethodPost:
		return s.createAlias(ctx, vs, name, body)
	case sub == "aliases" && subName == "" && method == http.MethodGet:
		return s.listAliases(ctx, vs, name)
	case sub == "aliases" && subName != "" && method == http.MethodGet:
		return s.getAlias(ctx, vs, name, subName)
	case sub == "aliases" && subName != "" && method == http.MethodPut:
		return s.updateAlias(ctx, vs, name, subName, body)
	case sub == "aliases" && subName != "" && method == http.MethodDelete:
		return s.deleteAlias(ctx, vs, name, subName)
	case sub == "concurrency" && subName == "":
		return s.handleConcurrency(ctx, vs, name, method, body)
	case sub == "invoke" && (subName == "disable" || subName == "enable") && method == http.MethodPost:
		return s.setInvocation(ctx, vs, name, subName == "enable", body)
	case sub == "instances" && subName == "" && method == http.MethodGet:
		return s.listInstances(ctx, name)
	default:
		return newError(http.StatusNotFound, CodePathNotFound, method+" "+string(ctx.Path())+" is not an API")
	}
}

// isVersioningPath reports whether handleVersioning serves sub.
func isVersioningPath(sub string) bool {
	switch sub {
	case "versions", "aliases", "concurrency", "invoke", "instances":
		return true
	}
	return false
}

func (s *Server) publishVersion(ctx *fasthttp.RequestCtx, vs VersionStore, name string, body []byte) error {
	var in api.PublishVersionInput
	if len(body) > 0 {
		if err := decodeJSON(body, &in); err != nil {
			return err
		}
	}
	v, err := vs.PublishVersion(ctx, name, in.Description, s.opts.Now())
	if err != nil {
		return versioningError(err)
	}
	if err := s.sync(ctx); err != nil {
		return err
	}
	return writeJSON(ctx, http.StatusOK, v)
}

// versionsPage is ListFunctionVersions' response.
type versionsPage struct {
	Versions  []*api.FunctionVersion `json:"versions"`
	NextToken string                 `json:"nextToken,omitempty"`
	Direction string                 `json:"direction"`
}

// listVersions serves ListFunctionVersions: direction BACKWARD (the
// default, newest first) or FORWARD; nextToken is the version id the page
// starts at.
func (s *Server) listVersions(ctx *fasthttp.RequestCtx, vs VersionStore, name string) error {
	q := ctx.QueryArgs()
	limit, aerr := listLimit(q.Peek("limit"))
	if aerr != nil {
		return aerr
	}
	dir := string(q.Peek("direction"))
	switch dir {
	case "":
		dir = "BACKWARD"
	case "BACKWARD", "FORWARD":
	default:
		return newError(http.StatusBadRequest, CodeInvalidArgument, fmt.Sprintf("direction %q is invalid: FORWARD or BACKWARD", dir))
	}
	var start uint64
	if t := string(q.Peek("nextToken")); t != "" {
		var err error
		if start, err = strconv.ParseUint(t, 10, 64); err != nil {
			return newError(http.StatusBadRequest, CodeInvalidArgument, fmt.Sprintf("nextToken %q is invalid", t))
		}
	}
	all, err := vs.ListVersions(ctx, name)
	if err != nil {
		return versioningError(err)
	}
	if dir == "BACKWARD" {
		slices.Reverse(all)
	}
	page := versionsPage{Versions: []*api.FunctionVersion{}, Direction: dir}
	for _, v := range all {
		id, _ := strconv.ParseUint(v.VersionID, 10, 64)
		if start != 0 && ((dir == "FORWARD" && id < start) || (dir == "BACKWARD" && id > start)) {
			continue
		}
		if len(page.Versions) == limit {
			page.NextToken = v.VersionID
			break
		}
		page.Versions = append(page.Versions, v)
	}
	return writeJSON(ctx, http.StatusOK, page)
}

func (s *Server) deleteVersion(ctx *fasthttp.RequestCtx, vs VersionStore, name, id string) error {
	if err := vs.DeleteVersion(ctx, name, id); err != nil {
		return versioningError(err)
	}
	if err := s.sync(ctx); err != nil {
		return err
	}
	ctx.SetStatusCode(http.StatusNoContent)
	return nil
}

// getQualified serves GetFunction with ?qualifier=: a version's frozen
// configuration, or for an alias the configuration of its main version.
func (s *Server) getQualified(ctx *fasthttp.RequestCtx, name string) error {
	qualifier := string(ctx.QueryArgs().Peek("qualifier"))
	f, err := s.opts.Functions.GetFunction(ctx, name)
	if err != nil {
		return err
	}
	if qualifier != "" && qualifier != api.QualifierLatest {
		if err := api.ValidateQualifier(qualifier); err != nil {
			return err
		}
		vs, err := s.versionStore()
		if err != nil {
			return err
		}
		id := qualifier
		if !api.IsVersionID(qualifier) {
			a, err := vs.GetAlias(ctx, name, qualifier)
			if err != nil {
				return versioningError(err)
			}
			id = a.VersionID
		}
		if _, f, err = vs.GetVersion(ctx, name, id); err != nil {
			return versioningError(err)
		}
	}
	f.InvocationRestriction = nil
	if s.opts.Versions != nil {
		if f.InvocationRestriction, err = s.opts.Versions.InvocationRestriction(ctx, name); err != nil {
			return err
		}
	}
	return s.writeFunction(ctx, f)
}

// requestQualifier is InvokeFunction's qualifier: ?qualifier=, else
// x-fc-qualifier; "" when neither is set.
func requestQualifier(ctx *fasthttp.RequestCtx) string {
	if q := ctx.QueryArgs().Peek("qualifier"); len(q) > 0 {
		return string(q)
	}
	return string(ctx.Request.Header.Peek(headerQualifier))
}
