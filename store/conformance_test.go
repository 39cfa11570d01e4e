package store_test

import (
	"path/filepath"
	"testing"

	"github.com/fcd-dev/fcd/store"
	"github.com/fcd-dev/fcd/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dir string) storetest.Store {
		s, err := store.Open(filepath.Join(dir, "fcd.db"), 0)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
