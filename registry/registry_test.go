package registry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	bolt "go.etcd.io/bbolt"

	"github.com/fcd-dev/fcd/iam"
)

const (
	adminID     = "FCDADMINKEY"
	adminSecret = "admin-secret"
	account     = "123"
)

// env is a running registry whose token endpoint checks temporary
// credentials against a real iam.Store, with one image pushed by the admin
// to examples/hello:v1.
type env struct {
	dir   string
	store *iam.Store
	reg   *Registry
	image v1.Image
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{dir: t.TempDir()}
	db, err := bolt.Open(filepath.Join(e.dir, "fcd.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.store, err = iam.Open(db, iam.Options{AccountID: account})
	if err != nil {
		t.Fatal(err)
	}
	for name, repos := range map[string][]string{
		"examples":     {"examples/*"},
		"examples-all": {"examples/**"},
		"other":        {"other/*"},
	} {
		if _, err := e.store.CreateRole(context.Background(), iam.Role{Name: name, Repositories: repos}); err != nil {
			t.Fatal(err)
		}
	}
	e.start(t)
	e.image, err = random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(e.ref(t, "examples/hello:v1"), e.image, remote.WithAuth(&authn.Basic{Username: adminID, Password: adminSecret})); err != nil {
		t.Fatalf("admin push: %v", err)
	}
	return e
}

func (e *env) start(t *testing.T) {
	t.Helper()
	reg, err := Start(context.Background(), Options{
		Dir:                  filepath.Join(e.dir, "registry"),
		AdminAccessKeyID:     adminID,
		AdminAccessKeySecret: adminSecret,
		Roles:                e.store,
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	e.reg = reg
	t.Cleanup(func() { reg.Close(context.Background()) })
}

func (e *env) ref(t *testing.T, repoTag string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(e.reg.Addr()+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// session issues temporary credentials for role, expiring at exp.
func (e *env) session(t *testing.T, role string, exp time.Time) iam.Credentials {
	t.Helper()
	c, err := e.store.IssueSession(context.Background(), iam.RoleARN(account, role), "test", time.Now().Add(-time.Hour), exp)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// statusOf returns the HTTP status in a go-containerregistry error, or 0.
func statusOf(err error) int {
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode
	}
	return 0
}

func TestPullAuthorization(t *testing.T) {
	e := newEnv(t)
	hour := time.Now().Add(time.Hour)
	examples := e.session(t, "examples", hour)
	expired := e.session(t, "examples", time.Now().Add(-time.Minute))

	// A session minted by another store (another session key) for a role
	// of the same name: a forgery as far as this registry is concerned.
	otherDB, err := bolt.Open(filepath.Join(t.TempDir(), "other.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer otherDB.Close()
	otherStore, err := iam.Open(otherDB, iam.Options{AccountID: account})
	if err != nil {
		t.Fatal(err)
	}
	forged, err := otherStore.IssueSession(context.Background(), iam.RoleARN(account, "examples"), "test", time.Now(), hour)
	if err != nil {
		t.Fatal(err)
	}

	role := func(c iam.Credentials) authn.Authenticator {
		return &authn.Basic{Username: c.AccessKeyID, Password: Password(c.SecretAccessKey, c.SessionToken)}
	}
	tests := []struct {
		name       string
		auth       authn.Authenticator
		wantStatus int // 0 = success
	}{
		{"admin", &authn.Basic{Username: adminID, Password: adminSecret}, 0},
		{"role allowed examples/*", role(examples), 0},
		{"role allowed examples/**", role(e.session(t, "examples-all", hour)), 0},
		{"role allowed only other/*", role(e.session(t, "other", hour)), http.StatusForbidden},
		{"no credentials", authn.Anonymous, http.StatusUnauthorized},
		{"expired session token", role(expired), http.StatusUnauthorized},
		{"forged session token", role(forged), http.StatusUnauthorized},
		{"session token of another key", &authn.Basic{Username: examples.AccessKeyID, Password: Password(examples.SecretAccessKey, e.session(t, "examples", hour).SessionToken)}, http.StatusUnauthorized},
		{"no session token", &authn.Basic{Username: examples.AccessKeyID, Password: examples.SecretAccessKey}, http.StatusUnauthorized},
		{"admin wrong secret", &authn.Basic{Username: adminID, Password: "nope"}, http.StatusUnauthorized},
	}
	wantDigest, err := e.image.Digest()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			desc, err := remote.Head(e.ref(t, "examples/hello:v1"), remote.WithAuth(tt.auth))
			if tt.wantStatus != 0 {
				if got := statusOf(err); got != tt.wantStatus {
					t.Fatalf("Head error = %v (status %d), want status %d", err, got, tt.wantStatus)
				}
				return
			}
			if err != nil {
				t.Fatalf("Head: %v", err)
			}
			if desc.Digest != wantDigest {
				t.Errorf("manifest digest = %s, want %s", desc.Digest, wantDigest)
			}
		})
	}
}

// TestRoleCannotPush checks that temporary credentials never push, even to
// a repository the role may pull.
func TestRoleCannotPush(t *testing.T) {
	e := newEnv(t)
	c := e.session(t, "examples", time.Now().Add(time.Hour))
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	err = remote.Write(e.ref(t, "examples/pushed:v1"), img,
		remote.WithAuth(&authn.Basic{Username: c.AccessKeyID, Password: Password(c.SecretAccessKey, c.SessionToken)}))
	if got := statusOf(err); got != http.StatusUnauthorized && got != http.StatusForbidden {
		t.Fatalf("role push error = %v (status %d), want 401 or 403", err, got)
	}
	_, err = remote.Head(e.ref(t, "examples/pushed:v1"), remote.WithAuth(&authn.Basic{Username: adminID, Password: adminSecret}))
	if got := statusOf(err); got != http.StatusNotFound {
		t.Errorf("after refused push, admin Head error = %v (status %d), want 404", err, got)
	}
}

// TestRestartKeepsImagesAndKey checks that blobs and the token signing key
// live under Dir: after a restart the image is still served.
func TestRestartKeepsImagesAndKey(t *testing.T) {
	e := newEnv(t)
	if err := e.reg.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	e.start(t)
	c := e.session(t, "examples", time.Now().Add(time.Hour))
	img, err := remote.Image(e.ref(t, "examples/hello:v1"),
		remote.WithAuth(&authn.Basic{Username: c.AccessKeyID, Password: Password(c.SecretAccessKey, c.SessionToken)}))
	if err != nil {
		t.Fatalf("pull after restart: %v", err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatalf("layer blob: %v", err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatalf("read layer (verifies its digest): %v", err)
	}
}

func TestParseScopes(t *testing.T) {
	got := parseScopes([]string{"repository:examples/hello:pull", "repository:examples/hello:push,pull", "registry:catalog:*", "bad", "repository::pull"})
	if len(got) != 2 {
		t.Fatalf("parseScopes = %d resources, want 2", len(got))
	}
	if got[0].Name != "examples/hello" || len(got[0].Actions) != 2 || got[0].Actions[0] != "pull" || got[0].Actions[1] != "push" {
		t.Errorf("first scope = %+v, want examples/hello [pull push]", got[0])
	}
	if got[1].Type != "registry" || got[1].Name != "catalog" {
		t.Errorf("second scope = %+v, want registry catalog", got[1])
	}
}
