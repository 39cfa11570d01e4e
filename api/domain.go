package api

import (
	"encoding/json"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
)

// CustomDomain routes HTTP requests whose Host is DomainName to functions
// by path (FC's CreateCustomDomain). fcd serves it over HTTP on its own
// listener; point the name's DNS at fcd.
type CustomDomain struct {
	DomainName       string       `json:"domainName"`
	AccountID        string       `json:"accountId"`
	APIVersion       string       `json:"apiVersion"`
	Protocol         string       `json:"protocol"`
	RouteConfig      *RouteConfig `json:"routeConfig,omitempty"`
	CreatedTime      string       `json:"createdTime"`
	LastModifiedTime string       `json:"lastModifiedTime"`
}

// RouteConfig is a custom domain's routing table.
type RouteConfig struct {
	Routes []PathConfig `json:"routes"`
}

// PathConfig routes a path to a function. Path is exact ("/a/b") or ends
// in "/*", matching the prefix before it and everything below ("/*":
// everything). Methods, when set, are the only ones routed.
type PathConfig struct {
	Path         string   `json:"path"`
	FunctionName string   `json:"functionName"`
	Qualifier    string   `json:"qualifier,omitempty"`
	Methods      []string `json:"methods"`
}

// CustomDomainInput is the body of CreateCustomDomain and
// UpdateCustomDomain; nil fields are absent.
type CustomDomainInput struct {
	DomainName  *string      `json:"domainName"`
	Protocol    *string      `json:"protocol"`
	RouteConfig *RouteConfig `json:"routeConfig"`
}

// ProtocolHTTP is the only custom domain protocol fcd serves.
const ProtocolHTTP = "HTTP"

var domainFields = map[string]field{
	"domainName": honoured,
	"protocol":   honoured, // HTTP only; see validate
	"routeConfig": {sub: map[string]field{
		"routes": honoured, // each route's fields: routeFields
	}},
	"authConfig": {sub: map[string]field{"authType": honoured, "authInfo": refused("fcd's custom domains are anonymous; sign requests through an HTTP trigger with authType function instead")}},
	"certConfig": refused("fcd serves custom domains over HTTP on its own listener; terminate TLS in front of it"),
	"tlsConfig":  refused("fcd serves custom domains over HTTP on its own listener; terminate TLS in front of it"),
	"wafConfig":  refused(noCloud + " (WAF)"),
}

var routeFields = map[string]field{
	"path":          honoured,
	"functionName":  honoured,
	"qualifier":     honoured,
	"methods":       honoured,
	"rewriteConfig": refused("fcd does not rewrite paths; the function receives the request path as sent"),
}

// DecodeCustomDomainInput decodes a CreateCustomDomain or
// UpdateCustomDomain body, refusing fields fcd does not implement.
func DecodeCustomDomainInput(body []byte) (*CustomDomainInput, error) {
	var in CustomDomainInput
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, invalid("request body is not valid JSON for this API: %v", err)
	}
	if err := checkFields(body, domainFields); err != nil {
		return nil, err
	}
	var raw struct {
		AuthConfig *struct {
			AuthType string `json:"authType"`
		} `json:"authConfig"`
		RouteConfig *struct {
			Routes []json.RawMessage `json:"routes"`
		} `json:"routeConfig"`
	}
	json.Unmarshal(body, &raw)
	if a := raw.AuthConfig; a != nil && a.AuthType != "" && !strings.EqualFold(a.AuthType, AuthTypeAnonymous) {
		return nil, invalid("authConfig.authType %q is not supported here: fcd's custom domains are anonymous", a.AuthType)
	}
	if rc := raw.RouteConfig; rc != nil {
		for _, r := range rc.Routes {
			if err := checkFields(r, routeFields); err != nil {
				return nil, invalid("routeConfig.routes: %v", err)
			}
		}
	}
	return &in, nil
}

var domainNameRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$`)

// NewCustomDomain builds the domain CreateCustomDomain stores.
func NewCustomDomain(in *CustomDomainInput, account string, now time.Time) (*CustomDomain, error) {
	if in.DomainName == nil {
		return nil, invalid("domainName is required")
	}
	d := &CustomDomain{
		DomainName: strings.ToLower(*in.DomainName), AccountID: account, APIVersion: Version, Protocol: ProtocolHTTP,
		CreatedTime: Timestamp(now), LastModifiedTime: Timestamp(now),
	}
	return d, d.apply(in)
}

// Update returns a copy of d with the fields present in in changed.
func (d *CustomDomain) Update(in *CustomDomainInput, now time.Time) (*CustomDomain, error) {
	if in.DomainName != nil && !strings.EqualFold(*in.DomainName, d.DomainName) {
		return nil, invalid("domainName cannot be changed")
	}
	n := *d
	n.LastModifiedTime = Timestamp(now)
	return &n, n.apply(in)
}

func (d *CustomDomain) apply(in *CustomDomainInput) error {
	setString(&d.Protocol, in.Protocol)
	if in.RouteConfig != nil {
		d.RouteConfig = in.RouteConfig
	}
	return d.validate()
}

func (d *CustomDomain) validate() error {
	if len(d.DomainName) > 253 || !domainNameRE.MatchString(d.DomainName) {
		return invalid("domainName %q is invalid: a DNS name such as api.example.com", d.DomainName)
	}
	if _, err := netip.ParseAddr(d.DomainName); err == nil {
		return invalid("domainName %q is an IP address: use a DNS name", d.DomainName)
	}
	if !strings.EqualFold(d.Protocol, ProtocolHTTP) {
		return invalid("protocol %q is not supported here: fcd serves custom domains over HTTP only", d.Protocol)
	}
	d.Protocol = ProtocolHTTP
	if d.RouteConfig == nil {
		return nil
	}
	seen := map[string]bool{}
	for i := range d.RouteConfig.Routes {
		r := &d.RouteConfig.Routes[i]
		if !strings.HasPrefix(r.Path, "/") || strings.Contains(strings.TrimSuffix(r.Path, "/*"), "*") {
			return invalid("routeConfig.routes[%d].path %q is invalid: an absolute path, optionally ending in /*", i, r.Path)
		}
		if seen[r.Path] {
			return invalid("routeConfig.routes: path %q appears twice", r.Path)
		}
		seen[r.Path] = true
		if err := ValidateFunctionName(r.FunctionName); err != nil {
			return invalid("routeConfig.routes[%d]: %v", i, err)
		}
		for j, m := range r.Methods {
			if !httpMethods[strings.ToUpper(m)] {
				return invalid("routeConfig.routes[%d].methods: %q is not an HTTP method", i, m)
			}
			r.Methods[j] = strings.ToUpper(m)
		}
	}
	return nil
}

// Route returns the route of path: an exact path first, else the longest
// "/*" prefix that matches; nil when none does.
func (d *CustomDomain) Route(path string) *PathConfig {
	if d.RouteConfig == nil {
		return nil
	}
	var best *PathConfig
	for i := range d.RouteConfig.Routes {
		r := &d.RouteConfig.Routes[i]
		prefix, wild := strings.CutSuffix(r.Path, "/*")
		switch {
		case !wild && r.Path == path:
			return r
		case wild && (path == prefix || strings.HasPrefix(path, prefix+"/")) &&
			(best == nil || len(r.Path) > len(best.Path)):
			best = r
		}
	}
	return best
}

// Allows reports whether the route takes method.
func (r *PathConfig) Allows(method string) bool {
	return len(r.Methods) == 0 || slices.Contains(r.Methods, strings.ToUpper(method))
}
