package api

import (
	"encoding/json"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// Function options beyond the container: how instances are kept and
// reached. Each is honoured by fcd (see fields.go for those it refuses).
//
//   - idleTimeout: seconds an on-demand instance may sit idle before it is
//     reclaimed; 0 means the host's default (fcd --idle-timeout).
//   - disableOndemand: only provisioned instances serve; a request finding
//     none free waits for one, and with no provision config it fails.
//   - disableInjectCredentials: None (default), Env (no role keys in the
//     instance's environment), Request (none in request headers), All.
//   - instanceIsolationMode: SHARE, the only mode (an instance serves up to
//     instanceConcurrency requests of any caller).
//   - internetAccess: true (the default), instances reach the outside
//     world through fcd's bridge; false, they reach nothing beyond it (no
//     DNS either: fcd serves none), while fcd still reaches them (package
//     instance's offline set).
//   - sessionAffinity: NONE, or HEADER_FIELD with sessionAffinityConfig
//     {"affinityHeaderFieldName", "sessionIdleTimeoutInSeconds",
//     "sessionTTLInSeconds"}: requests with the same value of that header
//     go to one instance (package scheduler's session affinity).
//   - customDNS: the instance's /etc/resolv.conf; absent means the host's.
//   - tags: key/value labels, for ListFunctions' filter and the tag API.

// Values of disableInjectCredentials.
const (
	InjectCredentialsNone    = "None"
	InjectCredentialsEnv     = "Env"
	InjectCredentialsRequest = "Request"
	InjectCredentialsAll     = "All"
)

// The supported instanceIsolationMode and sessionAffinity values.
const (
	IsolationShare             = "SHARE"
	SessionAffinityNone        = "NONE"
	SessionAffinityHeaderField = "HEADER_FIELD"
)

// SessionConfig is sessionAffinityConfig for HEADER_FIELD.
type SessionConfig struct {
	// HeaderName names the request header whose value is the session.
	HeaderName string `json:"affinityHeaderFieldName"`
	// IdleTimeout ends a session idle this long (s); 0 means 1800.
	IdleTimeout int64 `json:"sessionIdleTimeoutInSeconds"`
	// TTL ends a session this old (s); 0 means none.
	TTL int64 `json:"sessionTTLInSeconds"`
}

// Session returns the function's session affinity configuration, and
// whether it has session affinity.
func (f *Function) Session() (SessionConfig, bool) {
	var c SessionConfig
	if f.SessionAffinity != SessionAffinityHeaderField {
		return c, false
	}
	err := json.Unmarshal([]byte(f.SessionAffinityConfig), &c)
	return c, err == nil && c.HeaderName != ""
}

func (f *Function) validateSession() error {
	switch f.SessionAffinity {
	case "", SessionAffinityNone:
		if f.SessionAffinityConfig != "" {
			return invalid("sessionAffinityConfig is set but sessionAffinity is %q: use %s", f.SessionAffinity, SessionAffinityHeaderField)
		}
		return nil
	case SessionAffinityHeaderField:
	default:
		return invalid("sessionAffinity %q is not supported here: use %s or %s", f.SessionAffinity, SessionAffinityNone, SessionAffinityHeaderField)
	}
	if err := checkFields([]byte(f.SessionAffinityConfig), sessionConfigFields); err != nil {
		return invalid("sessionAffinityConfig: %v", err)
	}
	var c SessionConfig
	if err := json.Unmarshal([]byte(f.SessionAffinityConfig), &c); err != nil {
		return invalid("sessionAffinityConfig is not a JSON object: %v", err)
	}
	if !headerNameRE.MatchString(c.HeaderName) {
		return invalid("sessionAffinityConfig.affinityHeaderFieldName %q is invalid: an HTTP header name is required", c.HeaderName)
	}
	const maxSeconds = 7 * 86400
	if c.IdleTimeout < 0 || c.TTL < 0 || c.IdleTimeout > maxSeconds || c.TTL > maxSeconds {
		return invalid("sessionAffinityConfig: sessionIdleTimeoutInSeconds and sessionTTLInSeconds must be between 0 and %d", maxSeconds)
	}
	return nil
}

var headerNameRE = regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+.^_|~-]{1,128}$`)

// Limits of the function options.
const (
	MaxTags           = 20
	MaxTagKeyLength   = 128
	MaxTagValueLength = 256
	// MaxNameServers is what a resolver reads (glibc's MAXNS).
	MaxNameServers = 3
	MaxSearches    = 6
)

// CustomDNS is the instance's resolver configuration.
type CustomDNS struct {
	NameServers []string    `json:"nameServers"`
	Searches    []string    `json:"searches"`
	DNSOptions  []DNSOption `json:"dnsOptions"`
}

// DNSOption is one resolv.conf option: name, or name:value.
type DNSOption struct {
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
}

// Tag is a key/value label on a resource, in FC's capitalised shape.
type Tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// DecodeInput decodes a CreateFunction or UpdateFunction body, refusing
// fields fcd does not implement (fields.go). Errors are *InvalidError.
func DecodeInput(body []byte) (*Input, error) {
	var in Input
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, invalid("request body is not valid JSON for this API: %v", err)
	}
	if err := checkFields(body, functionFields); err != nil {
		return nil, err
	}
	return &in, nil
}

// InjectsEnv reports whether the role's keys go into the instance's
// environment; InjectsRequest, whether into request headers.
func (f *Function) InjectsEnv() bool {
	return f.DisableInjectCredentials != InjectCredentialsEnv && f.DisableInjectCredentials != InjectCredentialsAll
}

// InjectsRequest reports whether requests carry the role's keys in the
// x-fc-access-key-* headers.
func (f *Function) InjectsRequest() bool {
	return f.DisableInjectCredentials != InjectCredentialsRequest && f.DisableInjectCredentials != InjectCredentialsAll
}

// HasTags reports whether f carries every tag of want (key and value; an
// empty wanted value matches any value).
func (f *Function) HasTags(want []Tag) bool {
	for _, w := range want {
		if !slices.ContainsFunc(f.Tags, func(t Tag) bool { return t.Key == w.Key && (w.Value == "" || t.Value == w.Value) }) {
			return false
		}
	}
	return true
}

func (f *Function) applyOptions(in *Input) {
	setInt32(&f.IdleTimeout, in.IdleTimeout)
	if in.DisableOndemand != nil {
		f.DisableOndemand = *in.DisableOndemand
	}
	setString(&f.DisableInjectCredentials, in.DisableInjectCredentials)
	setString(&f.InstanceIsolationMode, in.InstanceIsolationMode)
	setString(&f.SessionAffinity, in.SessionAffinity)
	setString(&f.SessionAffinityConfig, in.SessionAffinityConfig)
	if in.SessionAffinity != nil && *in.SessionAffinity == SessionAffinityNone && in.SessionAffinityConfig == nil {
		f.SessionAffinityConfig = "" // turning affinity off drops its configuration
	}
	if in.InternetAccess != nil {
		v := *in.InternetAccess
		f.InternetAccess = &v
	}
	if in.CustomDNS != nil {
		f.CustomDNS = in.CustomDNS
		if f.CustomDNS.empty() {
			f.CustomDNS = nil
		}
	}
	if in.Tags != nil {
		f.Tags = in.Tags
	}
}

func (f *Function) setOptionDefaults() {
	if f.DisableInjectCredentials == "" {
		f.DisableInjectCredentials = InjectCredentialsNone
	}
	if f.InstanceIsolationMode == "" {
		f.InstanceIsolationMode = IsolationShare
	}
	if f.SessionAffinity == "" {
		f.SessionAffinity = SessionAffinityNone
	}
	if f.InternetAccess == nil {
		t := true
		f.InternetAccess = &t
	}
}

func (f *Function) cloneOptions(from *Function) {
	if from.InternetAccess != nil {
		v := *from.InternetAccess
		f.InternetAccess = &v
	}
	if d := from.CustomDNS; d != nil {
		f.CustomDNS = &CustomDNS{
			NameServers: slices.Clone(d.NameServers),
			Searches:    slices.Clone(d.Searches),
			DNSOptions:  slices.Clone(d.DNSOptions),
		}
	}
	f.Tags = slices.Clone(from.Tags)
}

func (f *Function) validateOptions() error {
	if f.IdleTimeout < 0 || f.IdleTimeout > MaxTimeout {
		return invalid("idleTimeout %d is invalid: it must be between 0 (the host's default) and %d seconds", f.IdleTimeout, MaxTimeout)
	}
	switch f.DisableInjectCredentials {
	case "", InjectCredentialsNone, InjectCredentialsEnv, InjectCredentialsRequest, InjectCredentialsAll:
	default:
		return invalid("disableInjectCredentials %q is invalid: use None, Env, Request or All", f.DisableInjectCredentials)
	}
	if m := f.InstanceIsolationMode; m != "" && m != IsolationShare {
		return invalid("instanceIsolationMode %q is not supported here: fcd runs %s only (an instance serves up to instanceConcurrency requests of any caller)", m, IsolationShare)
	}
	if err := f.validateSession(); err != nil {
		return err
	}
	if err := f.CustomDNS.validate(); err != nil {
		return err
	}
	return ValidateTags(f.Tags)
}

func (d *CustomDNS) empty() bool {
	return d == nil || len(d.NameServers) == 0 && len(d.Searches) == 0 && len(d.DNSOptions) == 0
}

var (
	searchRE    = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$`)
	dnsOptionRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

func (d *CustomDNS) validate() error {
	if d == nil {
		return nil
	}
	if len(d.NameServers) > MaxNameServers {
		return invalid("customDNS.nameServers has %d entries, at most %d are read by a resolver", len(d.NameServers), MaxNameServers)
	}
	for _, ns := range d.NameServers {
		if _, err := netip.ParseAddr(ns); err != nil {
			return invalid("customDNS.nameServers: %q is not an IP address", ns)
		}
	}
	if len(d.Searches) > MaxSearches {
		return invalid("customDNS.searches has %d entries, at most %d are allowed", len(d.Searches), MaxSearches)
	}
	for _, s := range d.Searches {
		if len(s) > 253 || !searchRE.MatchString(s) {
			return invalid("customDNS.searches: %q is not a domain name", s)
		}
	}
	for _, o := range d.DNSOptions {
		if !dnsOptionRE.MatchString(o.Name) {
			return invalid("customDNS.dnsOptions: name %q is invalid: 1-64 letters, digits, '_' or '-'", o.Name)
		}
		if o.Value != "" && !dnsOptionRE.MatchString(o.Value) {
			return invalid("customDNS.dnsOptions: value %q of %s is invalid", o.Value, o.Name)
		}
	}
	return nil
}

// RegistryConfig is customContainerConfig.registryConfig: credentials for
// the image's registry (authConfig), which fcd uses for that registry
// instead of the role's temporary credentials or the host's logins.
type RegistryConfig struct {
	AuthConfig *RegistryAuthConfig `json:"authConfig,omitempty"`
}

// RegistryAuthConfig is a user name and password for a registry.
type RegistryAuthConfig struct {
	UserName string `json:"userName"`
	Password string `json:"password"`
}

func (a *RegistryAuthConfig) empty() bool { return a == nil || a.UserName == "" && a.Password == "" }

func (rc *RegistryConfig) validate() error {
	if rc == nil || rc.AuthConfig.empty() {
		return nil
	}
	if a := rc.AuthConfig; a.UserName == "" || a.Password == "" {
		return invalid("customContainerConfig.registryConfig.authConfig needs both userName and password")
	}
	return nil
}

// ResolvConf renders d as the text of /etc/resolv.conf.
func (d *CustomDNS) ResolvConf() string {
	var b strings.Builder
	for _, ns := range d.NameServers {
		b.WriteString("nameserver " + ns + "\n")
	}
	if len(d.Searches) > 0 {
		b.WriteString("search " + strings.Join(d.Searches, " ") + "\n")
	}
	if len(d.DNSOptions) > 0 {
		opts := make([]string, 0, len(d.DNSOptions))
		for _, o := range d.DNSOptions {
			if o.Value != "" {
				opts = append(opts, o.Name+":"+o.Value)
			} else {
				opts = append(opts, o.Name)
			}
		}
		b.WriteString("options " + strings.Join(opts, " ") + "\n")
	}
	return b.String()
}

// ValidateTags checks tags: at most 20, keys 1-128 characters, unique and
// not in the acs:/aliyun namespaces, values at most 256 characters.
func ValidateTags(tags []Tag) error {
	if len(tags) > MaxTags {
		return invalid("tags: %d tags, at most %d are allowed", len(tags), MaxTags)
	}
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		if t.Key == "" || len(t.Key) > MaxTagKeyLength {
			return invalid("tags: key %q is invalid: 1-%d characters", t.Key, MaxTagKeyLength)
		}
		if lk := strings.ToLower(t.Key); strings.HasPrefix(lk, "acs:") || strings.HasPrefix(lk, "aliyun") {
			return invalid("tags: key %q is reserved (acs: and aliyun prefixes belong to the platform)", t.Key)
		}
		if len(t.Value) > MaxTagValueLength {
			return invalid("tags: value of %q is %d characters long, at most %d are allowed", t.Key, len(t.Value), MaxTagValueLength)
		}
		if seen[t.Key] {
			return invalid("tags: key %q appears twice", t.Key)
		}
		seen[t.Key] = true
	}
	return nil
}
