package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Trigger types and HTTP trigger auth types.
const (
	TriggerTypeHTTP   = "http"
	AuthTypeAnonymous = "anonymous"
	AuthTypeFunction  = "function"
)

// Trigger is a function trigger as CreateTrigger, GetTrigger and
// ListTriggers return it. fcd runs HTTP triggers only.
type Trigger struct {
	TriggerName string `json:"triggerName"`
	TriggerID   string `json:"triggerId"`
	TriggerType string `json:"triggerType"`
	// TriggerConfig is the JSON text of the type's configuration; for
	// http, HTTPTriggerConfig.
	TriggerConfig    string           `json:"triggerConfig"`
	Description      string           `json:"description,omitempty"`
	Qualifier        string           `json:"qualifier"`
	Status           string           `json:"status"`
	HTTPTrigger      *HTTPTriggerURLs `json:"httpTrigger,omitempty"`
	CreatedTime      string           `json:"createdTime"`
	LastModifiedTime string           `json:"lastModifiedTime"`
}

// HTTPTriggerURLs are where an HTTP trigger answers.
type HTTPTriggerURLs struct {
	URLInternet string `json:"urlInternet"`
	URLIntranet string `json:"urlIntranet"`
}

// HTTPTriggerConfig is an HTTP trigger's configuration.
type HTTPTriggerConfig struct {
	// AuthType is "anonymous" (no signature) or "function" (every request
	// signed with an access key, as the API).
	AuthType string `json:"authType"`
	// Methods are the HTTP methods the trigger accepts; empty means all.
	Methods []string `json:"methods"`
}

// Allows reports whether the trigger accepts method.
func (c HTTPTriggerConfig) Allows(method string) bool {
	if len(c.Methods) == 0 {
		return true
	}
	for _, m := range c.Methods {
		if strings.EqualFold(m, method) {
			return true
		}
	}
	return false
}

// TriggerInput is the body of CreateTrigger and UpdateTrigger; nil fields
// are absent.
type TriggerInput struct {
	TriggerName   *string `json:"triggerName"`
	TriggerType   *string `json:"triggerType"`
	TriggerConfig *string `json:"triggerConfig"`
	Description   *string `json:"description"`
	Qualifier     *string `json:"qualifier"`
}

var (
	triggerNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,127}$`)
	httpMethods   = map[string]bool{http.MethodGet: true, http.MethodPost: true, http.MethodPut: true, http.MethodDelete: true,
		http.MethodHead: true, http.MethodPatch: true, http.MethodOptions: true}
)

// NewTrigger builds the trigger CreateTrigger stores. Errors are
// *InvalidError.
func NewTrigger(in *TriggerInput, id string, now time.Time) (*Trigger, error) {
	if in.TriggerName == nil || !triggerNameRE.MatchString(*in.TriggerName) {
		return nil, invalid("triggerName is required: 1-128 letters, digits, '_' or '-', not starting with a digit or '-'")
	}
	if in.TriggerType == nil || *in.TriggerType != TriggerTypeHTTP {
		return nil, invalid("triggerType must be %q: fcd runs HTTP triggers only", TriggerTypeHTTP)
	}
	t := &Trigger{
		TriggerName: *in.TriggerName, TriggerID: id, TriggerType: TriggerTypeHTTP,
		TriggerConfig: `{"authType":"anonymous"}`, Qualifier: "LATEST", Status: "Ready",
		CreatedTime: Timestamp(now), LastModifiedTime: Timestamp(now),
	}
	return t, t.apply(in)
}

// Update returns a copy of t with the fields present in in changed. Name
// and type cannot change.
func (t *Trigger) Update(in *TriggerInput, now time.Time) (*Trigger, error) {
	if in.TriggerName != nil && *in.TriggerName != t.TriggerName {
		return nil, invalid("triggerName cannot be changed")
	}
	if in.TriggerType != nil && *in.TriggerType != t.TriggerType {
		return nil, invalid("triggerType cannot be changed")
	}
	n := *t
	n.LastModifiedTime = Timestamp(now)
	return &n, n.apply(in)
}

func (t *Trigger) apply(in *TriggerInput) error {
	setString(&t.Description, in.Description)
	setString(&t.Qualifier, in.Qualifier)
	if in.TriggerConfig != nil {
		t.TriggerConfig = *in.TriggerConfig
	}
	if t.Qualifier == "" {
		t.Qualifier = QualifierLatest
	}
	if err := ValidateQualifier(t.Qualifier); err != nil {
		return err
	}
	if err := checkFields([]byte(t.TriggerConfig), httpTriggerFields); err != nil {
		return invalid("triggerConfig: %v", err)
	}
	_, err := t.HTTPConfig()
	return err
}

// HTTPConfig parses and checks the trigger's configuration.
func (t *Trigger) HTTPConfig() (HTTPTriggerConfig, error) {
	var c HTTPTriggerConfig
	if err := json.Unmarshal([]byte(t.TriggerConfig), &c); err != nil {
		return c, invalid("triggerConfig is not a JSON HTTP trigger configuration: %v", err)
	}
	if c.AuthType == "" {
		c.AuthType = AuthTypeAnonymous
	}
	if c.AuthType != AuthTypeAnonymous && c.AuthType != AuthTypeFunction {
		return c, invalid("triggerConfig.authType %q is invalid: use %q or %q", c.AuthType, AuthTypeAnonymous, AuthTypeFunction)
	}
	for _, m := range c.Methods {
		if !httpMethods[strings.ToUpper(m)] {
			return c, invalid("triggerConfig.methods: %q is not an HTTP method", m)
		}
	}
	return c, nil
}

// TriggerURLs fills the URLs an HTTP trigger of function answers at, for
// an fcd reachable at endpoint (host:port) whose trigger domain is domain.
func (t *Trigger) TriggerURLs(function, endpoint, domain string) {
	_, port, _ := strings.Cut(endpoint, ":")
	t.HTTPTrigger = &HTTPTriggerURLs{
		URLInternet: fmt.Sprintf("http://%s.%s:%s", function, domain, port),
		URLIntranet: fmt.Sprintf("http://%s/fn/%s", endpoint, function),
	}
}
