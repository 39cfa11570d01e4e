package proxy

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/fcd-dev/fcd/api"
)

// functionFilter is ListFunctions' filters besides prefix, as the SDK
// sends them in the query.
type functionFilter struct {
	// name and description match substrings.
	name, description string
	// runtime matches exactly.
	runtime string
	// none is set by a filter no fcd function can match: a gpuType (fcd
	// runs no GPU functions), a resourceGroupId (it has no resource
	// groups), fcVersion v2 (every function is FC 3.0's).
	none bool
	// tags must all be on the function (an empty value matches any).
	tags []api.Tag
}

func parseFunctionFilter(q *fasthttp.Args) (functionFilter, error) {
	f := functionFilter{
		name:        string(q.Peek("functionName")),
		description: string(q.Peek("description")),
		runtime:     string(q.Peek("runtime")),
	}
	if len(q.Peek("gpuType")) > 0 || len(q.Peek("resourceGroupId")) > 0 {
		f.none = true
	}
	switch v := string(q.Peek("fcVersion")); v {
	case "", "v3":
	case "v2":
		f.none = true
	default:
		return f, newError(http.StatusBadRequest, CodeInvalidArgument, "fcVersion "+v+" is invalid: use v3 or v2")
	}
	if v := q.Peek("tags"); len(v) > 0 {
		if err := json.Unmarshal(v, &f.tags); err != nil {
			return f, newError(http.StatusBadRequest, CodeInvalidArgument, `tags is not a JSON array of {"Key","Value"}: `+err.Error())
		}
	}
	return f, nil
}

func (f functionFilter) match(fn *api.Function) bool {
	return !f.none &&
		strings.Contains(fn.FunctionName, f.name) &&
		strings.Contains(fn.Description, f.description) &&
		(f.runtime == "" || fn.Runtime == f.runtime) &&
		fn.HasTags(f.tags)
}

// listFiltered pages through the store from start until limit functions
// match filter; next is the name the following page starts at.
func (s *Server) listFiltered(ctx context.Context, prefix, start string, limit int, filter functionFilter) (out []*api.Function, next string, err error) {
	for {
		fns, more, err := s.opts.Functions.ListFunctions(ctx, prefix, start, maxListLimit)
		if err != nil {
			return nil, "", err
		}
		for _, fn := range fns {
			if !filter.match(fn) {
				continue
			}
			if len(out) == limit {
				return out, fn.FunctionName, nil
			}
			out = append(out, fn)
		}
		if more == "" {
			return out, "", nil
		}
		start = more
	}
}
