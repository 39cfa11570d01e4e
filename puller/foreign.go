package puller

import (
	"context"
	"fmt"
	"io"

	"github.com/containerd/containerd/remotes"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// RegistryOnly returns f refusing, with ErrForeignURLs, every descriptor
// that names URLs to fetch its blob from (Docker's foreign layers, OCI's
// non-distributable ones). containerd's fetcher requests such a blob from
// those URLs before the registry: from the host's network, at servers the
// image's creator chose, loopback ones included. fcd fetches an image's
// blobs from its registry only.
func RegistryOnly(f remotes.Fetcher) remotes.Fetcher { return registryOnly{f} }

type registryOnly struct{ f remotes.Fetcher }

func (r registryOnly) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if err := CheckURLs(desc); err != nil {
		return nil, err
	}
	return r.f.Fetch(ctx, desc)
}

// CheckURLs returns ErrForeignURLs, naming the blob, when desc names URLs
// to fetch it from; nil otherwise.
func CheckURLs(desc ocispec.Descriptor) error {
	if len(desc.URLs) == 0 {
		return nil
	}
	return fmt.Errorf("blob %s (%s) names %d URL(s) to fetch it from: %w", desc.Digest, desc.MediaType, len(desc.URLs), ErrForeignURLs)
}
