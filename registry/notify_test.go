package registry

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// A push by tag reaches OnPush through distribution's notifications, with
// the repository as image references name it; blob uploads and pushes by
// digest do not.
func TestOnPush(t *testing.T) {
	events := make(chan PushEvent, 16)
	reg, err := Start(context.Background(), Options{
		Dir:                  filepath.Join(t.TempDir(), "registry"),
		AdminAccessKeyID:     adminID,
		AdminAccessKeySecret: adminSecret,
		OnPush:               func(_ context.Context, ev PushEvent) { events <- ev },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close(context.Background()) })
	auth := remote.WithAuth(&authn.Basic{Username: adminID, Password: adminSecret})

	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	byDigest, _ := name.ParseReference(reg.Addr()+"/app/web@"+d.String(), name.Insecure)
	if err := remote.Write(byDigest, img, auth); err != nil {
		t.Fatal(err)
	}
	tag, _ := name.ParseReference(reg.Addr()+"/app/web:v1", name.Insecure)
	if err := remote.Write(tag, img, auth); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		want := PushEvent{Repository: reg.Addr() + "/app/web", Tag: "v1", Digest: d.String(), MediaType: "application/vnd.docker.distribution.manifest.v2+json"}
		if ev != want {
			t.Errorf("got %+v, want %+v", ev, want)
		}
	case <-time.After(time.Minute):
		t.Fatal("no push event within a minute")
	}

	// Only the registry, which holds the secret, can post events.
	resp, err := http.Post("http://"+reg.Addr()+notifyPath, "application/json", strings.NewReader(`{"events":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned post: got %d, want 401", resp.StatusCode)
	}
}
