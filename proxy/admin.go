package proxy

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/valyala/fasthttp"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/billing"
	"github.com/fcd-dev/fcd/iam"
)

// fcd's own API, next to FC's: roles and billing, under /fcd/v1/, signed
// like every FC call.
//
//	POST   /fcd/v1/roles            create a role {"roleName","repositories","description"}
//	GET    /fcd/v1/roles            list roles
//	GET    /fcd/v1/roles/{name}     get a role
//	DELETE /fcd/v1/roles/{name}     delete a role
//	GET    /fcd/v1/billing?function=&kind=&since=&until=&limit=   records and totals
//	...    /fcd/v1/acceleration/...   image acceleration (accel.go)
//	GET    /fcd/v1/coldstarts/{function}?limit=N   last instance starts, phase by phase

// RoleStore keeps the roles functions may assume.
type RoleStore interface {
	CreateRole(ctx context.Context, r iam.Role) (iam.Role, error)
	GetRole(ctx context.Context, name string) (iam.Role, error)
	GetRoleByARN(ctx context.Context, arn string) (iam.Role, error)
	ListRoles(ctx context.Context) ([]iam.Role, error)
	DeleteRole(ctx context.Context, name string) error
}

// Ledger answers billing queries.
type Ledger interface {
	Query(ctx context.Context, f billing.Filter) ([]billing.Record, billing.Totals, error)
}

// Meter records what each invocation used.
type Meter interface {
	Record(billing.InvocationRecord)
}

// RoleCredentials returns temporary credentials of a role, for the
// x-fc-access-key-id, x-fc-access-key-secret and x-fc-security-token
// headers. It is called on every invocation of a function with a role and
// must cache.
type RoleCredentials interface {
	RoleCredentials(ctx context.Context, roleARN string) (id, secret, token string, err error)
}

const adminPrefix = "/fcd/v1/"

var adminPrefixBytes = []byte(adminPrefix)

// CodeRoleNotFound is the error code for a role that does not exist.
const CodeRoleNotFound = "RoleNotFound"

func (s *Server) handleAdmin(ctx *fasthttp.RequestCtx, rid string) {
	body, keyID, aerr := s.readSignedKey(ctx, s.opts.MaxControlBody)
	if aerr != nil {
		s.fail(ctx, rid, aerr)
		return
	}
	resource, name, _ := strings.Cut(strings.TrimPrefix(string(ctx.Path()), adminPrefix), "/")
	method := string(ctx.Method())
	var err error
	switch {
	case resource == "roles" && s.opts.Roles == nil, resource == "billing" && s.opts.Ledger == nil,
		resource == "coldstarts" && s.opts.ColdStarts == nil:
		err = newError(http.StatusNotImplemented, "NotImplemented", "this fcd has no "+resource)
	case isConsoleResource(resource):
		err = s.handleConsoleAPI(ctx, resource, name, method, keyID)
	case resource == "acceleration":
		err = s.handleAcceleration(ctx, name, method, body)
	case resource == "roles" && name == "" && method == http.MethodPost:
		err = s.createRole(ctx, body)
	case resource == "roles" && name == "" && method == http.MethodGet:
		err = s.listRoles(ctx)
	case resource == "roles" && name != "" && method == http.MethodGet:
		err = s.getRole(ctx, unescape(name))
	case resource == "roles" && name != "" && method == http.MethodDelete:
		err = s.deleteRole(ctx, unescape(name))
	case resource == "billing" && name == "" && method == http.MethodGet:
		err = s.queryBilling(ctx)
	case resource == "coldstarts" && name != "" && method == http.MethodGet:
		err = s.coldStarts(ctx, unescape(name))
	case resource == "roles" || resource == "billing" || resource == "coldstarts":
		err = newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, method+" is not allowed on "+string(ctx.Path()))
	default:
		err = newError(http.StatusNotFound, CodePathNotFound, "no API at "+string(ctx.Path()))
	}
	if err != nil {
		s.fail(ctx, rid, toAPIError(err, CodeRoleNotFound))
	}
}

func (s *Server) createRole(ctx *fasthttp.RequestCtx, body []byte) error {
	var r iam.Role
	if err := decodeJSON(body, &r); err != nil {
		return err
	}
	created, err := s.opts.Roles.CreateRole(ctx, r)
	if err != nil {
		return err
	}
	return writeJSON(ctx, http.StatusOK, created)
}

func (s *Server) getRole(ctx *fasthttp.RequestCtx, name string) error {
	r, err := s.opts.Roles.GetRole(ctx, name)
	if err != nil {
		return err
	}
	return writeJSON(ctx, http.StatusOK, r)
}

func (s *Server) listRoles(ctx *fasthttp.RequestCtx) error {
	roles, err := s.opts.Roles.ListRoles(ctx)
	if err != nil {
		return err
	}
	if roles == nil {
		roles = []iam.Role{}
	}
	return writeJSON(ctx, http.StatusOK, map[string][]iam.Role{"roles": roles})
}

func (s *Server) deleteRole(ctx *fasthttp.RequestCtx, name string) error {
	if err := s.opts.Roles.DeleteRole(ctx, name); err != nil {
		return err
	}
	ctx.SetStatusCode(http.StatusNoContent)
	return nil
}

// billingPage is the billing query response.
type billingPage struct {
	Records []billing.Record `json:"records"`
	Totals  billing.Totals   `json:"totals"`
}

func (s *Server) queryBilling(ctx *fasthttp.RequestCtx) error {
	q := ctx.QueryArgs()
	f := billing.Filter{Function: string(q.Peek("function")), Kind: billing.Kind(q.Peek("kind"))}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Peek(t.name); len(v) > 0 {
			parsed, err := time.Parse(time.RFC3339, string(v))
			if err != nil {
				return newError(http.StatusBadRequest, CodeInvalidArgument, fmt.Sprintf("%s %q is not an RFC 3339 time", t.name, v))
			}
			*t.dst = parsed
		}
	}
	if v := q.Peek("limit"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 0 {
			return newError(http.StatusBadRequest, CodeInvalidArgument, fmt.Sprintf("limit %q is not a count", v))
		}
		f.Limit = n
	}
	if f.Kind != "" && f.Kind != billing.KindPull && f.Kind != billing.KindInvocation {
		return newError(http.StatusBadRequest, CodeInvalidArgument, fmt.Sprintf("kind %q is not %q or %q", f.Kind, billing.KindPull, billing.KindInvocation))
	}
	recs, totals, err := s.opts.Ledger.Query(ctx, f)
	if err != nil {
		return err
	}
	if recs == nil {
		recs = []billing.Record{}
	}
	return writeJSON(ctx, http.StatusOK, billingPage{Records: recs, Totals: totals})
}

// checkRole refuses a function whose role does not exist.
func (s *Server) checkRole(ctx context.Context, f *api.Function) error {
	if f.Role == "" || s.opts.Roles == nil {
		return nil
	}
	_, err := s.opts.Roles.GetRoleByARN(ctx, f.Role)
	if errdefs.IsNotFound(err) || errdefs.IsInvalidArgument(err) {
		return newError(http.StatusBadRequest, CodeInvalidArgument, fmt.Sprintf("role %q does not exist in this account: create it first (fcctl role create)", f.Role))
	}
	return err
}

// roleHeaders sets the function role's temporary credentials on a request
// to its instance, unless the function disables their injection.
func (s *Server) roleHeaders(ctx context.Context, out *outRequest, fn *api.Function) error {
	role := fn.Role
	if role == "" || s.opts.Credentials == nil || !fn.InjectsRequest() {
		return nil
	}
	id, secret, token, err := s.opts.Credentials.RoleCredentials(ctx, role)
	if err != nil {
		return fmt.Errorf("assume role %s: %w", role, err)
	}
	out.creds, out.keyID, out.keySecret, out.token = true, headerValue(id), headerValue(secret), headerValue(token)
	return nil
}

// coldStarts serves GET /fcd/v1/coldstarts/{function}?limit=N.
func (s *Server) coldStarts(ctx *fasthttp.RequestCtx, name string) error {
	if _, err := s.fns.get(ctx, s.opts.Functions, name); err != nil {
		return toAPIError(err, CodeFunctionNotFound)
	}
	limit := 0
	if v := ctx.QueryArgs().Peek("limit"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 0 {
			return newError(http.StatusBadRequest, CodeInvalidArgument, fmt.Sprintf("limit %q is invalid: it must be a number of starts, 0 for all", v))
		}
		limit = n
	}
	starts := s.opts.ColdStarts.ColdStarts(name, limit)
	if starts == nil {
		starts = []api.ColdStart{}
	}
	return writeJSON(ctx, http.StatusOK, api.ColdStartsPage{ColdStarts: starts})
}
