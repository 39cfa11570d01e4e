package registry

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/notifications"
)

// PushEvent is a manifest pushed to the registry by tag.
type PushEvent struct {
	// Repository is host:port/path, as in image references.
	Repository string
	Tag        string
	// Digest and MediaType are the pushed manifest's (an image manifest or
	// an index).
	Digest    string
	MediaType string
}

// notifyPath is where distribution's notification endpoint posts, on the
// registry's own listener.
const notifyPath = "/fcd/notifications"

// notifier receives distribution's notification envelopes (its webhook
// protocol, delivered asynchronously with retries) and calls onPush for
// every manifest pushed by tag. Requests must carry the bearer secret the
// endpoint was configured with, so only this registry can post.
type notifier struct {
	secret string
	addr   string
	onPush func(context.Context, PushEvent)
	log    *slog.Logger
}

func newNotifier(addr string, onPush func(context.Context, PushEvent), log *slog.Logger) (*notifier, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &notifier{secret: hex.EncodeToString(b), addr: addr, onPush: onPush, log: log}, nil
}

// endpoint is the distribution configuration that posts to n.
func (n *notifier) endpoint() configuration.Endpoint {
	return configuration.Endpoint{
		Name:      "fcd",
		URL:       "http://" + n.addr + notifyPath,
		Headers:   http.Header{"Authorization": {"Bearer " + n.secret}},
		Timeout:   10 * time.Second,
		Threshold: 5,
		Backoff:   time.Second,
		Ignore:    configuration.Ignore{Actions: []string{"pull", "delete", "mount"}},
	}
}

func (n *notifier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	want := "Bearer " + n.secret
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(want)) != 1 {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	var env struct {
		Events []notifications.Event `json:"events"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<20)).Decode(&env); err != nil {
		http.Error(w, "bad envelope: "+err.Error(), http.StatusBadRequest)
		return
	}
	for _, ev := range env.Events {
		t := ev.Target
		if ev.Action != notifications.EventActionPush || t.Tag == "" || !isManifest(t.MediaType) {
			continue
		}
		n.log.Debug("registry: tag pushed", "repository", t.Repository, "tag", t.Tag, "digest", t.Digest)
		n.onPush(r.Context(), PushEvent{Repository: n.addr + "/" + t.Repository, Tag: t.Tag, Digest: t.Digest.String(), MediaType: t.MediaType})
	}
	w.WriteHeader(http.StatusOK)
}

func isManifest(mt string) bool {
	switch mt {
	case "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
		"application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json":
		return true
	}
	return false
}
