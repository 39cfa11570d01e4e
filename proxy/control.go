package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/fcd-dev/fcd/api"
)

// Listing bounds, as FC's ListFunctions has them.
const (
	defaultListLimit = 20
	maxListLimit     = 100
)

func (s *Server) createFunction(ctx *fasthttp.RequestCtx, body []byte) error {
	in, err := decodeInput(body)
	if err != nil {
		return err
	}
	f, err := api.NewFunction(in, newID(), s.opts.Region, s.opts.AccountID, s.opts.Now())
	if err != nil {
		return err
	}
	if err := s.checkRole(ctx, f); err != nil {
		return err
	}
	if err := s.opts.Functions.CreateFunction(ctx, f); err != nil {
		return err
	}
	if err := s.sync(ctx); err != nil {
		return err
	}
	return s.writeFunction(ctx, f)
}

func (s *Server) getFunction(ctx *fasthttp.RequestCtx, name string) error {
	return s.getQualified(ctx, unescape(name)) // versions.go
}

func (s *Server) updateFunction(ctx *fasthttp.RequestCtx, name string, body []byte) error {
	in, err := decodeInput(body)
	if err != nil {
		return err
	}
	tags := in.Tags
	in.Tags = nil
	now := s.opts.Now()
	if in.Role != nil {
		// Checked before the store's transaction, which must not wait on
		// another read; a role deleted in between is refused at start.
		if err := s.checkRole(ctx, &api.Function{Role: *in.Role}); err != nil {
			return err
		}
	}
	f, err := s.opts.Functions.UpdateFunction(ctx, unescape(name), func(f *api.Function) (*api.Function, error) {
		// Tags sent back as GetFunction gave them change nothing.
		if len(tags) > 0 && !slices.Equal(tags, f.Tags) {
			return nil, newError(http.StatusBadRequest, CodeInvalidArgument, "tags cannot be changed by UpdateFunction: use TagResources and UntagResources")
		}
		return f.Update(in, now)
	})
	if err != nil {
		return err
	}
	if err := s.sync(ctx); err != nil {
		return err
	}
	return s.writeFunction(ctx, f)
}

func (s *Server) deleteFunction(ctx *fasthttp.RequestCtx, name string) error {
	if err := s.opts.Functions.DeleteFunction(ctx, unescape(name)); err != nil {
		return err
	}
	if err := s.sync(ctx); err != nil {
		return err
	}
	ctx.SetStatusCode(http.StatusNoContent)
	return nil
}

// listPage is ListFunctions' response body.
type listPage struct {
	Functions []*api.Function `json:"functions"`
	NextToken string          `json:"nextToken,omitempty"`
}

func (s *Server) listFunctions(ctx *fasthttp.RequestCtx) error {
	q := ctx.QueryArgs()
	limit, aerr := listLimit(q.Peek("limit"))
	if aerr != nil {
		return aerr
	}
	filter, err := parseFunctionFilter(q)
	if err != nil {
		return err
	}
	fns, next, err := s.listFiltered(ctx, string(q.Peek("prefix")), string(q.Peek("nextToken")), limit, filter)
	if err != nil {
		return err
	}
	page := listPage{Functions: fns, NextToken: next}
	if page.Functions == nil {
		page.Functions = []*api.Function{}
	}
	for _, f := range page.Functions {
		s.decorate(f)
	}
	return writeJSON(ctx, http.StatusOK, page)
}

func (s *Server) writeFunction(ctx *fasthttp.RequestCtx, f *api.Function) error {
	s.decorate(f)
	return writeJSON(ctx, http.StatusOK, f)
}

// decorate fills the fields fcd derives at read time rather than stores.
func (s *Server) decorate(f *api.Function) {
	cc := f.CustomContainerConfig
	if cc == nil {
		return
	}
	s.decorateAcceleration(f)
	if cc.ResolvedImageURI == "" {
		cc.ResolvedImageURI = cc.Image
	}
}

// decodeInput decodes a CreateFunction or UpdateFunction body, refusing
// the fields fcd does not implement.
func decodeInput(body []byte) (*api.Input, error) {
	if len(body) == 0 {
		return nil, newError(http.StatusBadRequest, CodeInvalidArgument, "request body is empty; a JSON object is required")
	}
	return api.DecodeInput(body)
}

func decodeJSON(body []byte, v any) error {
	if len(body) == 0 {
		return newError(http.StatusBadRequest, CodeInvalidArgument, "request body is empty; a JSON object is required")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return newError(http.StatusBadRequest, CodeInvalidArgument, "request body is not valid JSON for this API: "+err.Error())
	}
	return nil
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	ctx.Response.Header.SetContentType("application/json")
	ctx.SetStatusCode(status)
	ctx.SetBody(body)
	return nil
}

func unescape(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

// newID returns a random UUID-shaped function id.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// LogReader reads instance logs of a function.
type LogReader interface {
	// ReadLogs returns the last tail lines of the function's instance logs
	// (0: all kept).
	ReadLogs(function string, tail int) ([]string, error)
}

// ColdStartReader reads the last instance starts of a function.
type ColdStartReader interface {
	// ColdStarts returns the last n starts of function (all kept when n
	// <= 0), oldest first.
	ColdStarts(function string, n int) []api.ColdStart
}

// logsPage is the fcd-specific GetFunctionLogs response.
type logsPage struct {
	Lines []string `json:"lines"`
}

// readLogs serves GET /2023-03-30/functions/{name}/logs?tail=N, an fcd
// extension for fcctl logs.
func (s *Server) readLogs(ctx *fasthttp.RequestCtx, name string) error {
	if s.opts.Logs == nil {
		return newError(http.StatusNotImplemented, "NotImplemented", "this fcd keeps no instance logs")
	}
	if _, err := s.fns.get(ctx, s.opts.Functions, name); err != nil {
		return err
	}
	tail := 0
	if v := ctx.QueryArgs().Peek("tail"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 0 {
			return newError(http.StatusBadRequest, CodeInvalidArgument, fmt.Sprintf("tail %q is invalid: it must be a number of lines, 0 for all", v))
		}
		tail = n
	}
	lines, err := s.opts.Logs.ReadLogs(name, tail)
	if err != nil {
		return err
	}
	if lines == nil {
		lines = []string{}
	}
	return writeJSON(ctx, http.StatusOK, logsPage{Lines: lines})
}
