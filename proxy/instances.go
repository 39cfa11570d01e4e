package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/fcd-dev/fcd/api"
)

// ListInstances: a function's running instances, as the scheduler has
// them (VersionPools.Instances).

// Instance statuses ListInstances reports.
const (
	InstanceRunning  = "Running"
	InstanceStopping = "Stopping" // draining: serves no new requests
)

// instanceInfo is FC's InstanceInfo.
type instanceInfo struct {
	InstanceID    string `json:"instanceId"`
	VersionID     string `json:"versionId"`
	Qualifier     string `json:"qualifier"`
	Status        string `json:"status"`
	CreatedTimeMs int64  `json:"createdTimeMs"`
}

// instancesPage is ListInstances' response.
type instancesPage struct {
	Instances []instanceInfo `json:"instances"`
	RequestID string         `json:"requestId"`
}

// instanceFilter is ListInstances' query.
type instanceFilter struct {
	versions        []string // nil: every version
	ids, statuses   []string
	start, end      int64 // createdTimeMs bounds, 0: none
	startKey        string
	limit           int
	qualifierGiven  bool
	qualifierString string
}

func (s *Server) parseInstanceFilter(ctx *fasthttp.RequestCtx, name string) (*instanceFilter, error) {
	q := ctx.QueryArgs()
	f := &instanceFilter{limit: maxListLimit, startKey: string(q.Peek("startKey"))}
	jsonList := func(key string, into *[]string) error {
		if v := q.Peek(key); len(v) > 0 {
			if err := json.Unmarshal(v, into); err != nil {
				return newError(http.StatusBadRequest, CodeInvalidArgument, fmt.Sprintf("%s %q is invalid: a JSON array of strings", key, v))
			}
		}
		return nil
	}
	if err := jsonList("instanceIds", &f.ids); err != nil {
		return nil, err
	}
	if err := jsonList("instanceStatus", &f.statuses); err != nil {
		return nil, err
	}
	for _, key := range []string{"startTimeMs", "endTimeMs"} {
		if v := q.Peek(key); len(v) > 0 {
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil || n < 0 {
				return nil, newError(http.StatusBadRequest, CodeInvalidArgument, fmt.Sprintf("%s %q is invalid: milliseconds since the epoch", key, v))
			}
			if key == "startTimeMs" {
				f.start = n
			} else {
				f.end = n
			}
		}
	}
	if v := q.Peek("limit"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 || n > maxListLimit {
			return nil, newError(http.StatusBadRequest, CodeInvalidArgument, fmt.Sprintf("limit %q is invalid: it must be between 1 and %d", v, maxListLimit))
		}
		f.limit = n
	}
	// withAllActive asks for instances that are not serving too: fcd
	// lists every instance it runs either way, draining ones as Stopping.
	if qual := string(q.Peek("qualifier")); qual != "" {
		f.qualifierGiven, f.qualifierString = true, qual
		switch {
		case qual == api.QualifierLatest:
			f.versions = []string{""}
		case api.IsVersionID(qual):
			f.versions = []string{qual}
		default:
			if err := api.ValidateQualifier(qual); err != nil {
				return nil, err
			}
			vs, err := s.versionStore()
			if err != nil {
				return nil, err
			}
			a, err := vs.GetAlias(ctx, name, qual)
			if err != nil {
				return nil, versioningError(err)
			}
			f.versions = a.Versions()
		}
	}
	return f, nil
}

func (f *instanceFilter) match(in InstanceInfo, status string) bool {
	ms := in.Created.UnixMilli()
	return (f.versions == nil || slices.Contains(f.versions, in.VersionID)) &&
		(len(f.ids) == 0 || slices.Contains(f.ids, in.ID)) &&
		(len(f.statuses) == 0 || slices.Contains(f.statuses, status)) &&
		(f.start == 0 || ms >= f.start) && (f.end == 0 || ms <= f.end) &&
		in.ID > f.startKey
}

func (s *Server) listInstances(ctx *fasthttp.RequestCtx, name string) error {
	if _, err := s.opts.Functions.GetFunction(ctx, name); err != nil {
		return err
	}
	f, err := s.parseInstanceFilter(ctx, name)
	if err != nil {
		return err
	}
	page := instancesPage{Instances: []instanceInfo{}, RequestID: string(ctx.Response.Header.Peek(HeaderRequestID))}
	if s.opts.VersionPools == nil {
		return writeJSON(ctx, http.StatusOK, page)
	}
	all := s.opts.VersionPools.Instances(name)
	slices.SortFunc(all, func(a, b InstanceInfo) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	for _, in := range all {
		status := InstanceRunning
		if in.Draining {
			status = InstanceStopping
		}
		if !f.match(in, status) {
			continue
		}
		if len(page.Instances) == f.limit {
			break
		}
		version, qualifier := in.VersionID, in.VersionID
		if version == "" {
			version, qualifier = api.QualifierLatest, api.QualifierLatest
		}
		if f.qualifierGiven {
			qualifier = f.qualifierString
		}
		page.Instances = append(page.Instances, instanceInfo{
			InstanceID: in.ID, VersionID: version, Qualifier: qualifier, Status: status,
			CreatedTimeMs: in.Created.UnixMilli(),
		})
	}
	return writeJSON(ctx, http.StatusOK, page)
}
