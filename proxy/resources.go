package proxy

import (
	"net/http"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/fcd-dev/fcd/api"
)

// resourcesPrefix is the API root; /2023-03-30/functions is routed before
// it (handleFunctions), the account-wide resources here.
var resourcesPrefix = []byte("/" + api.Version + "/")

// handleResources routes the account-wide APIs under /2023-03-30/:
// provision-configs (ListProvisionConfigs), tags-v2 (TagResources,
// UntagResources, ListTagResources) and custom-domains.
func (s *Server) handleResources(ctx *fasthttp.RequestCtx, rid, rest string) {
	body, aerr := s.readSigned(ctx, s.opts.MaxControlBody)
	if aerr != nil {
		s.fail(ctx, rid, aerr)
		return
	}
	kind, name, _ := strings.Cut(rest, "/")
	method := string(ctx.Method())
	var err error
	switch {
	case kind == "provision-configs" && name == "" && method == http.MethodGet:
		err = s.listProvisions(ctx)
	case kind == "tags-v2" && name == "":
		err = s.handleTags(ctx, method, body)
	case kind == "custom-domains":
		err = s.handleCustomDomains(ctx, unescape(name), method, body)
	case kind == "provision-configs" || kind == "tags-v2":
		err = newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, method+" is not allowed on "+string(ctx.Path()))
	default:
		err = newError(http.StatusNotFound, CodePathNotFound, "no API at "+string(ctx.Path()))
	}
	if err != nil {
		s.fail(ctx, rid, toAPIError(err, CodeFunctionNotFound))
	}
}
