package gzindex

import (
	"bytes"
	"fmt"
)

// Layer media types. Build accepts the gzip ones and refuses the others by
// name.
const (
	MediaTypeOCIGzip    = "application/vnd.oci.image.layer.v1.tar+gzip"
	MediaTypeDockerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeOCINDGzip  = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
	MediaTypeOCIZstd    = "application/vnd.oci.image.layer.v1.tar+zstd"
	MediaTypeOCITar     = "application/vnd.oci.image.layer.v1.tar"
	mediaTypeXz         = "application/x-xz (tar+xz)"
	mediaTypeBzip2      = "application/x-bzip2 (tar+bzip2)"
)

// checkMediaType refuses a declared media type that is not gzip.
func checkMediaType(mt string) error {
	switch mt {
	case "", MediaTypeOCIGzip, MediaTypeDockerGzip, MediaTypeOCINDGzip:
		return nil
	}
	return fmt.Errorf("%w: %s: only gzip-compressed tar layers can be indexed", ErrUnsupported, mt)
}

// sniff names the format of a layer from its first bytes (up to 512); it
// returns "" for gzip.
func sniff(head []byte) error {
	var mt string
	switch {
	case len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		return nil
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}),
		len(head) >= 4 && head[0]&0xf0 == 0x50 && bytes.Equal(head[1:4], []byte{0x2a, 0x4d, 0x18}):
		mt = MediaTypeOCIZstd
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		mt = mediaTypeXz
	case bytes.HasPrefix(head, []byte("BZh")):
		mt = mediaTypeBzip2
	case len(head) >= 262 && bytes.Equal(head[257:262], []byte("ustar")):
		mt = MediaTypeOCITar
	default:
		return fmt.Errorf("%w: not a gzip stream (first bytes % x)", ErrCorrupt, head[:min(len(head), 4)])
	}
	return fmt.Errorf("%w: %s: only gzip-compressed tar layers can be indexed", ErrUnsupported, mt)
}
