package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/fcd-dev/fcd/api"
)

// TestUpdateFunctionTagsKeepsRevision: a tag change is stored and watched
// but leaves the function's Revision, so its instances do not drain.
func TestUpdateFunctionTagsKeepsRevision(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	if err := s.CreateFunction(ctx, fn("f")); err != nil {
		t.Fatal(err)
	}
	before, _ := s.GetFunction(ctx, "f")
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := s.Watch(wctx)
	_, err := s.UpdateFunctionTags(ctx, "f", func(f *api.Function) ([]api.Tag, error) {
		return append(f.Tags, api.Tag{Key: "team", Value: "a"}), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := s.GetFunction(ctx, "f")
	if after.Revision != before.Revision {
		t.Errorf("Revision: got %d, want %d (unchanged by tags)", after.Revision, before.Revision)
	}
	if !slices.Equal(after.Tags, []api.Tag{{Key: "team", Value: "a"}}) {
		t.Errorf("tags: got %v", after.Tags)
	}
	select {
	case e := <-events:
		if e.Kind != api.KindFunction || e.FunctionValue == nil || len(e.FunctionValue.Tags) != 1 {
			t.Errorf("event: got %+v, want the function with its tag", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event for the tag change")
	}
}
