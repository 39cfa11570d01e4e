package proxy

import (
	"net/http"

	"github.com/valyala/fasthttp"
)

// handleCustomDomains serves the custom domain API.
func (s *Server) handleCustomDomains(ctx *fasthttp.RequestCtx, name, method string, body []byte) error {
	return newError(http.StatusNotImplemented, "NotImplemented", "custom domains are not implemented yet")
}
