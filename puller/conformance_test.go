package puller_test

import (
	"testing"

	"github.com/fcd-dev/fcd/instance/image"
	"github.com/fcd-dev/fcd/instance/image/imagetest"
	"github.com/fcd-dev/fcd/puller"
)

// TestConformance holds the full pull to the image.Images contract.
func TestConformance(t *testing.T) {
	c := setup(t)
	imagetest.Run(t, func(t *testing.T) image.Images { return newPuller(t, c, puller.Options{}) })
}
