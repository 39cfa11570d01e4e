package registry

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/containerd/containerd/remotes"
	"github.com/containerd/containerd/remotes/docker"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/fcd-dev/fcd/iam"
)

// TestContainerdResolverWithAssumedRole is the puller's path end to end:
// the platform assumes a role through the AWS SDK against the embedded STS
// issuer over loopback, and containerd's docker resolver resolves and
// fetches the image with those temporary credentials through the token
// endpoint.
func TestContainerdResolverWithAssumedRole(t *testing.T) {
	e := newEnv(t)
	const serviceID, serviceSecret = "FCDSERVICE", "service-secret"
	sts := httptest.NewServer(iam.NewIssuer(e.store, iam.IssuerOptions{Keys: map[string]string{serviceID: serviceSecret}}))
	defer sts.Close()
	provider, err := iam.NewProvider(iam.ProviderOptions{Endpoint: sts.URL, AccessKeyID: serviceID, SecretAccessKey: serviceSecret})
	if err != nil {
		t.Fatal(err)
	}
	ref := e.reg.Addr() + "/examples/hello:v1"
	wantDigest, err := e.image.Digest()
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		role    string // "" = no credentials
		wantErr string // "" = success
	}{
		{"role allowed examples/*", "examples", ""},
		{"role allowed only other/*", "other", "403"},
		{"no role", "", "401"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			creds := func(string) (string, string, error) { return "", "", nil }
			if tt.role != "" {
				c, err := provider.Retrieve(ctx, iam.RoleARN(account, tt.role))
				if err != nil {
					t.Fatalf("assume role: %v", err)
				}
				creds = TemporaryCredentialsFunc(e.reg.Addr(), c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
			}
			resolver := docker.NewResolver(docker.ResolverOptions{
				Hosts: docker.ConfigureDefaultRegistries(
					docker.WithAuthorizer(docker.NewDockerAuthorizer(docker.WithAuthCreds(creds))),
					docker.WithPlainHTTP(docker.MatchLocalhost),
				),
			})
			name, desc, err := resolver.Resolve(ctx, ref)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Resolve error = %v, want one mentioning %s", err, tt.wantErr)
				}
				t.Logf("refused as expected: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if desc.Digest.String() != wantDigest.String() {
				t.Errorf("resolved digest = %s, want %s", desc.Digest, wantDigest)
			}
			fetcher, err := resolver.Fetcher(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			var manifest ocispec.Manifest
			if err := json.Unmarshal(fetchAll(t, ctx, fetcher, desc), &manifest); err != nil {
				t.Fatalf("parse manifest: %v", err)
			}
			if len(manifest.Layers) != 2 {
				t.Fatalf("manifest has %d layers, want 2", len(manifest.Layers))
			}
			if got := int64(len(fetchAll(t, ctx, fetcher, manifest.Layers[0]))); got != manifest.Layers[0].Size {
				t.Errorf("layer blob has %d bytes, want %d", got, manifest.Layers[0].Size)
			}
		})
	}
}

func fetchAll(t *testing.T, ctx context.Context, f remotes.Fetcher, desc ocispec.Descriptor) []byte {
	t.Helper()
	rc, err := f.Fetch(ctx, desc)
	if err != nil {
		t.Fatalf("fetch %s: %v", desc.Digest, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", desc.Digest, err)
	}
	return data
}
