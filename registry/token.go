package registry

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/fcd-dev/fcd/iam"
)

// RoleVerifier checks a role's temporary credentials. *iam.Store
// implements it.
type RoleVerifier interface {
	// PullPatterns verifies the credential triple (signature, key id,
	// secret, expiry) and returns the role's ARN and the repository
	// patterns it may pull, in iam.MatchRepository syntax.
	PullPatterns(ctx context.Context, accessKeyID, secretAccessKey, sessionToken string) (roleARN string, patterns []string, err error)
}

var _ RoleVerifier = (*iam.Store)(nil)

// access is one resource in a token, in distribution's claim format.
type access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// claims is the JWT payload distribution's token access controller reads.
type claims struct {
	Issuer    string    `json:"iss"`
	Subject   string    `json:"sub"`
	Audience  string    `json:"aud"`
	Expiry    int64     `json:"exp"`
	NotBefore int64     `json:"nbf"`
	IssuedAt  int64     `json:"iat"`
	ID        string    `json:"jti"`
	Access    []*access `json:"access"`
}

// principal is who presented credentials and what they may do.
type principal struct {
	name  string
	admin bool
	// patterns are the repositories a role may pull; unused for admin.
	patterns []string
}

// grant returns the actions of a requested scope the principal may have.
func (p principal) grant(a *access) []string {
	if p.admin {
		return a.Actions
	}
	if a.Type != "repository" || !iam.MatchRepository(p.patterns, a.Name) {
		return nil
	}
	if slices.Contains(a.Actions, "pull") {
		return []string{"pull"}
	}
	return nil
}

// tokenServer is the /token handler.
type tokenServer struct {
	service, issuer string
	adminID         string
	adminSecret     string
	roles           RoleVerifier
	ttl             time.Duration
	now             func() time.Time
	signer          jose.Signer
	logger          *slog.Logger
}

func newTokenServer(key signingKey, opts Options) (*tokenServer, error) {
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key.priv, KeyID: key.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("token signer: %w", err)
	}
	return &tokenServer{
		service:     opts.Service,
		issuer:      opts.Issuer,
		adminID:     opts.AdminAccessKeyID,
		adminSecret: opts.AdminAccessKeySecret,
		roles:       opts.Roles,
		ttl:         opts.TokenTTL,
		now:         opts.Now,
		signer:      signer,
		logger:      opts.Logger,
	}, nil
}

type tokenResponse struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	IssuedAt    string `json:"issued_at"`
}

func (ts *tokenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var (
		user, password string
		haveCreds      bool
		scopes         []string
		service        string
	)
	switch r.Method {
	case http.MethodGet:
		user, password, haveCreds = r.BasicAuth()
		scopes = r.URL.Query()["scope"]
		service = r.URL.Query().Get("service")
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			ts.fail(w, r, http.StatusBadRequest, "UNSUPPORTED", err)
			return
		}
		if gt := r.PostForm.Get("grant_type"); gt != "password" {
			ts.fail(w, r, http.StatusBadRequest, "UNSUPPORTED", fmt.Errorf("grant_type %q is not supported, only password", gt))
			return
		}
		user, password = r.PostForm.Get("username"), r.PostForm.Get("password")
		haveCreds = user != ""
		scopes = strings.Fields(r.PostForm.Get("scope"))
		service = r.PostForm.Get("service")
	default:
		ts.fail(w, r, http.StatusMethodNotAllowed, "UNSUPPORTED", fmt.Errorf("method %s", r.Method))
		return
	}
	if service != "" && service != ts.service {
		ts.fail(w, r, http.StatusBadRequest, "DENIED", fmt.Errorf("service %q is not %q", service, ts.service))
		return
	}
	if !haveCreds {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", ts.service))
		ts.fail(w, r, http.StatusUnauthorized, "UNAUTHORIZED", ErrNoCredentials)
		return
	}
	p, err := ts.authenticate(r.Context(), user, password)
	if err != nil {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", ts.service))
		ts.fail(w, r, http.StatusUnauthorized, "UNAUTHORIZED", err)
		return
	}
	requested := parseScopes(scopes)
	var granted []*access
	for _, a := range requested {
		if actions := p.grant(a); len(actions) > 0 {
			granted = append(granted, &access{Type: a.Type, Name: a.Name, Actions: actions})
		}
	}
	if len(requested) > 0 && len(granted) == 0 {
		ts.fail(w, r, http.StatusForbidden, "DENIED", fmt.Errorf("%s may not %s: %w", p.name, strings.Join(scopes, " "), ErrDenied))
		return
	}
	token, issued, err := ts.sign(p.name, granted)
	if err != nil {
		ts.fail(w, r, http.StatusInternalServerError, "UNKNOWN", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(tokenResponse{
		Token:       token,
		AccessToken: token,
		ExpiresIn:   int64(ts.ttl / time.Second),
		IssuedAt:    issued.UTC().Format(time.RFC3339),
	})
}

// authenticate maps credentials to a principal: the admin key, or a role's
// temporary credentials (password = "<secret>:<sessionToken>").
func (ts *tokenServer) authenticate(ctx context.Context, user, password string) (principal, error) {
	if subtle.ConstantTimeCompare([]byte(user), []byte(ts.adminID)) == 1 {
		if subtle.ConstantTimeCompare([]byte(password), []byte(ts.adminSecret)) == 1 {
			return principal{name: user, admin: true}, nil
		}
		return principal{}, fmt.Errorf("admin key %s: wrong secret: %w", user, ErrBadCredentials)
	}
	secret, sessionToken, ok := splitPassword(password)
	if !ok || ts.roles == nil {
		return principal{}, fmt.Errorf("access key %s: unknown key, or a temporary key without a session token (password must be <secret>:<sessionToken>): %w", user, ErrBadCredentials)
	}
	roleARN, patterns, err := ts.roles.PullPatterns(ctx, user, secret, sessionToken)
	if err != nil {
		return principal{}, fmt.Errorf("temporary access key %s: %v: %w", user, err, ErrBadCredentials)
	}
	return principal{name: roleARN, patterns: patterns}, nil
}

func (ts *tokenServer) sign(subject string, granted []*access) (string, time.Time, error) {
	now := ts.now()
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return "", now, err
	}
	if granted == nil {
		granted = []*access{}
	}
	c := claims{
		Issuer:    ts.issuer,
		Subject:   subject,
		Audience:  ts.service,
		Expiry:    now.Add(ts.ttl).Unix(),
		NotBefore: now.Unix(),
		IssuedAt:  now.Unix(),
		ID:        hex.EncodeToString(id),
		Access:    granted,
	}
	token, err := jwt.Signed(ts.signer).Claims(c).Serialize()
	return token, now, err
}

// parseScopes parses "type:name:actions" scopes (name may hold ':'),
// merging repeated resources.
func parseScopes(scopes []string) []*access {
	var out []*access
	for _, s := range scopes {
		typ, rest, ok := strings.Cut(s, ":")
		if !ok {
			continue
		}
		i := strings.LastIndex(rest, ":")
		if i < 0 {
			continue
		}
		name, actions := rest[:i], strings.Split(rest[i+1:], ",")
		if typ == "" || name == "" {
			continue
		}
		idx := slices.IndexFunc(out, func(a *access) bool { return a.Type == typ && a.Name == name })
		if idx < 0 {
			out = append(out, &access{Type: typ, Name: name})
			idx = len(out) - 1
		}
		for _, a := range actions {
			if a != "" && !slices.Contains(out[idx].Actions, a) {
				out[idx].Actions = append(out[idx].Actions, a)
			}
		}
	}
	return out
}

// fail writes a Docker registry style error body.
func (ts *tokenServer) fail(w http.ResponseWriter, r *http.Request, status int, code string, err error) {
	if ts.logger != nil {
		ts.logger.Info("registry token refused", "status", status, "error", err.Error(), "remote", r.RemoteAddr)
	}
	type errorEntry struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Errors []errorEntry `json:"errors"`
	}{[]errorEntry{{Code: code, Message: err.Error()}}})
}
