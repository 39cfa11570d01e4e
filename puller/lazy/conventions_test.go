package lazy

import (
	"testing"

	"github.com/fcd-dev/fcd/puller/accel"
)

// The lazy puller reads what the converter writes; the two packages keep
// their own copies of the conventions so the run path does not import the
// converter.
func TestConventionsMatchConverter(t *testing.T) {
	for _, c := range []struct{ name, got, want string }{
		{"artifact type", artifactTypeGzindex, accel.ArtifactTypeGzindex},
		{"layer annotation", annotationLayer, accel.AnnotationLayer},
		{"index head annotation", annotationIndexHead, accel.AnnotationIndexHead},
		{"tag suffix", AcceleratedSuffix, accel.TagSuffix},
		{"source annotation", annotationSource, accel.AnnotationSource},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %q, want the converter's %q", c.name, c.got, c.want)
		}
	}
}
