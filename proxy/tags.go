package proxy

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/fcd-dev/fcd/api"
)

// The tag API (TagResources, UntagResources, ListTagResources at
// /2023-03-30/tags-v2) tags functions, the only taggable resource here. A
// resource id is a function's name or its ARN. Tags live in the function's
// record, so changing them is a function update.

// resourceTypeFunction is the ResourceType of a function.
const resourceTypeFunction = "FUNCTION"

// tagInput is TagResources' body.
type tagInput struct {
	ResourceID   []string  `json:"ResourceId"`
	ResourceType string    `json:"ResourceType"`
	Tag          []api.Tag `json:"Tag"`
}

// tagResource is one tag of one resource in ListTagResources.
type tagResource struct {
	ResourceID   string `json:"ResourceId"`
	ResourceType string `json:"ResourceType"`
	TagKey       string `json:"TagKey"`
	TagValue     string `json:"TagValue"`
}

type tagPage struct {
	TagResources []tagResource `json:"TagResources"`
	NextToken    string        `json:"NextToken,omitempty"`
}

func (s *Server) handleTags(ctx *fasthttp.RequestCtx, method string, body []byte) error {
	switch method {
	case http.MethodPost:
		return s.tagResources(ctx, body)
	case http.MethodDelete:
		return s.untagResources(ctx)
	case http.MethodGet:
		return s.listTagResources(ctx)
	default:
		return newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, method+" is not allowed on "+string(ctx.Path()))
	}
}

func checkResourceType(t string) error {
	if t == "" || strings.EqualFold(t, resourceTypeFunction) || strings.EqualFold(t, "ALIYUN::FC::FUNCTION") {
		return nil
	}
	return newError(http.StatusBadRequest, CodeInvalidArgument, "ResourceType "+t+" is not supported here: fcd tags functions only (FUNCTION)")
}

// resourceFunction returns the function a resource id names.
func resourceFunction(id string) string {
	if i := strings.LastIndex(id, ":functions/"); i >= 0 && strings.HasPrefix(id, "acs:fc:") {
		return id[i+len(":functions/"):]
	}
	return id
}

// queryList decodes a list the SDK sends in the query as JSON.
func queryList(q *fasthttp.Args, key string, v any) error {
	raw := q.Peek(key)
	if len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return newError(http.StatusBadRequest, CodeInvalidArgument, key+" is not a JSON list: "+err.Error())
	}
	return nil
}

func (s *Server) tagResources(ctx *fasthttp.RequestCtx, body []byte) error {
	var in tagInput
	if err := decodeJSON(body, &in); err != nil {
		return err
	}
	if err := checkResourceType(in.ResourceType); err != nil {
		return err
	}
	if len(in.ResourceID) == 0 || len(in.Tag) == 0 {
		return newError(http.StatusBadRequest, CodeInvalidArgument, "ResourceId and Tag are required")
	}
	return s.changeTags(ctx, in.ResourceID, func(tags []api.Tag) []api.Tag {
		for _, t := range in.Tag {
			tags = slices.DeleteFunc(tags, func(o api.Tag) bool { return o.Key == t.Key })
			tags = append(tags, t)
		}
		return tags
	})
}

func (s *Server) untagResources(ctx *fasthttp.RequestCtx) error {
	q := ctx.QueryArgs()
	var ids, keys []string
	if err := queryList(q, "ResourceId", &ids); err != nil {
		return err
	}
	if err := queryList(q, "TagKey", &keys); err != nil {
		return err
	}
	if err := checkResourceType(string(q.Peek("ResourceType"))); err != nil {
		return err
	}
	all := string(q.Peek("All")) == "true"
	if len(ids) == 0 || (len(keys) == 0 && !all) {
		return newError(http.StatusBadRequest, CodeInvalidArgument, "ResourceId is required, and TagKey unless All is true")
	}
	return s.changeTags(ctx, ids, func(tags []api.Tag) []api.Tag {
		if all {
			return nil
		}
		return slices.DeleteFunc(tags, func(t api.Tag) bool { return slices.Contains(keys, t.Key) })
	})
}

// TagStore changes a function's tags without changing its configuration's
// revision, so its instances keep running (store.Store implements it).
// Without it, a tag change is a function update and drains them.
type TagStore interface {
	UpdateFunctionTags(ctx context.Context, name string, change func(*api.Function) ([]api.Tag, error)) (*api.Function, error)
}

// changeTags applies change to the tags of each function ids names; the
// first missing function or invalid result stops it.
func (s *Server) changeTags(ctx *fasthttp.RequestCtx, ids []string, change func([]api.Tag) []api.Tag) error {
	tags := func(f *api.Function) ([]api.Tag, error) {
		t := change(slices.Clone(f.Tags))
		if len(t) == 0 {
			t = nil
		}
		return t, api.ValidateTags(t)
	}
	for _, id := range ids {
		var err error
		if ts, ok := s.opts.Functions.(TagStore); ok {
			_, err = ts.UpdateFunctionTags(ctx, resourceFunction(id), tags)
		} else {
			_, err = s.opts.Functions.UpdateFunction(ctx, resourceFunction(id), func(f *api.Function) (*api.Function, error) {
				n := f.Clone()
				var err error
				n.Tags, err = tags(n)
				return n, err
			})
		}
		if err != nil {
			return err
		}
	}
	if err := s.sync(ctx); err != nil {
		return err
	}
	ctx.SetStatusCode(http.StatusNoContent)
	return nil
}

// listTagResources serves ListTagResources: the tags of the functions
// ResourceId names (all functions when absent) that carry every tag of
// Tag, paged by Limit and NextToken (a function name) at function
// boundaries.
func (s *Server) listTagResources(ctx *fasthttp.RequestCtx) error {
	q := ctx.QueryArgs()
	var ids []string
	var filter []api.Tag
	if err := queryList(q, "ResourceId", &ids); err != nil {
		return err
	}
	if err := queryList(q, "Tag", &filter); err != nil {
		return err
	}
	if err := checkResourceType(string(q.Peek("ResourceType"))); err != nil {
		return err
	}
	limit, aerr := listLimit(q.Peek("Limit"))
	if aerr != nil {
		return aerr
	}
	fns, err := s.taggedFunctions(ctx, ids, string(q.Peek("NextToken")))
	if err != nil {
		return err
	}
	page := tagPage{TagResources: []tagResource{}}
	for _, f := range fns {
		if len(f.Tags) == 0 || !f.HasTags(filter) {
			continue
		}
		if len(page.TagResources) > 0 && len(page.TagResources)+len(f.Tags) > limit {
			page.NextToken = f.FunctionName
			break
		}
		for _, t := range f.Tags {
			page.TagResources = append(page.TagResources, tagResource{
				ResourceID: f.FunctionName, ResourceType: resourceTypeFunction, TagKey: t.Key, TagValue: t.Value,
			})
		}
	}
	return writeJSON(ctx, http.StatusOK, page)
}

// taggedFunctions returns the functions ids names, or every function, in
// name order from start.
func (s *Server) taggedFunctions(ctx context.Context, ids []string, start string) ([]*api.Function, error) {
	if len(ids) == 0 {
		var all []*api.Function
		for {
			fns, next, err := s.opts.Functions.ListFunctions(ctx, "", start, maxListLimit)
			if err != nil {
				return nil, err
			}
			all = append(all, fns...)
			if next == "" {
				return all, nil
			}
			start = next
		}
	}
	names := make([]string, 0, len(ids))
	for _, id := range ids {
		if n := resourceFunction(id); n >= start {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	var out []*api.Function
	for _, n := range slices.Compact(names) {
		f, err := s.opts.Functions.GetFunction(ctx, n)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}
