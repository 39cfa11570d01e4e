package proxy

import (
	"slices"
	"strings"
	"sync"
	"testing"

	fc "github.com/alibabacloud-go/fc-20230330/v4/client"
	"github.com/alibabacloud-go/tea/dara"

	"github.com/fcd-dev/fcd/api"
)

func tag(k, v string) *fc.Tag { return &fc.Tag{Key: dara.String(k), Value: dara.String(v)} }

// TestSDKListFunctionsFilters: ListFunctions honours every filter the SDK
// sends, across pages.
func TestSDKListFunctionsFilters(t *testing.T) {
	addr := testServer(t, Options{})
	c := sdkClient(t, addr)
	createSDKFunction(t, c, "a1", []*fc.Tag{tag("team", "a")})
	createSDKFunction(t, c, "a2", []*fc.Tag{tag("team", "a"), tag("env", "prod")})
	createSDKFunction(t, c, "b1", []*fc.Tag{tag("team", "b")})
	if _, err := c.UpdateFunction(dara.String("b1"), &fc.UpdateFunctionRequest{Body: &fc.UpdateFunctionInput{Description: dara.String("the bee")}}); err != nil {
		t.Fatal(err)
	}
	list := func(req *fc.ListFunctionsRequest) ([]string, string) {
		t.Helper()
		resp, err := c.ListFunctions(req)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range resp.Body.Functions {
			names = append(names, dara.StringValue(f.FunctionName))
		}
		return names, dara.StringValue(resp.Body.NextToken)
	}
	tests := []struct {
		name string
		req  *fc.ListFunctionsRequest
		want []string
	}{
		{"all", &fc.ListFunctionsRequest{}, []string{"a1", "a2", "b1"}},
		{"prefix", &fc.ListFunctionsRequest{Prefix: dara.String("a")}, []string{"a1", "a2"}},
		{"tag", &fc.ListFunctionsRequest{Tags: []*fc.Tag{tag("team", "a")}}, []string{"a1", "a2"}},
		{"two tags", &fc.ListFunctionsRequest{Tags: []*fc.Tag{tag("team", "a"), tag("env", "prod")}}, []string{"a2"}},
		{"tag key only", &fc.ListFunctionsRequest{Tags: []*fc.Tag{{Key: dara.String("env")}}}, []string{"a2"}},
		{"description", &fc.ListFunctionsRequest{Description: dara.String("bee")}, []string{"b1"}},
		{"functionName", &fc.ListFunctionsRequest{FunctionName: dara.String("2")}, []string{"a2"}},
		{"runtime", &fc.ListFunctionsRequest{Runtime: dara.String("custom-container")}, []string{"a1", "a2", "b1"}},
		{"other runtime", &fc.ListFunctionsRequest{Runtime: dara.String("python3.10")}, nil},
		{"fcVersion v3", &fc.ListFunctionsRequest{FcVersion: dara.String("v3")}, []string{"a1", "a2", "b1"}},
		{"fcVersion v2", &fc.ListFunctionsRequest{FcVersion: dara.String("v2")}, nil},
		{"gpuType", &fc.ListFunctionsRequest{GpuType: dara.String("fc.gpu.tesla.1")}, nil},
		{"resourceGroupId", &fc.ListFunctionsRequest{ResourceGroupId: dara.String("rg-1")}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, _ := list(tc.req); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("pages with a filter", func(t *testing.T) {
		var got []string
		req := &fc.ListFunctionsRequest{Limit: dara.Int32(1), Tags: []*fc.Tag{tag("team", "a")}}
		for range 3 {
			names, next := list(req)
			got = append(got, names...)
			if next == "" {
				break
			}
			req.NextToken = dara.String(next)
		}
		if want := []string{"a1", "a2"}; !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
}

// TestSDKTags: TagResources, UntagResources and ListTagResources on
// functions, and the tags CreateFunction set, as GetFunction returns them.
func TestSDKTags(t *testing.T) {
	addr := testServer(t, Options{})
	c := sdkClient(t, addr)
	createSDKFunction(t, c, "f1", []*fc.Tag{tag("team", "a")})
	createSDKFunction(t, c, "f2", nil)
	ids := func(names ...string) []*string { return dara.StringSlice(names) }

	if _, err := c.TagResources(&fc.TagResourcesRequest{Body: &fc.TagResourcesInput{
		ResourceId: ids("f1", "acs:fc:local:0000000000000000:functions/f2"), ResourceType: dara.String("FUNCTION"),
		Tag: []*fc.Tag{tag("env", "prod")},
	}}); err != nil {
		t.Fatal(err)
	}
	listTags := func(req *fc.ListTagResourcesRequest) []string {
		t.Helper()
		resp, err := c.ListTagResources(req)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range resp.Body.TagResources {
			out = append(out, dara.StringValue(r.ResourceId)+":"+dara.StringValue(r.TagKey)+"="+dara.StringValue(r.TagValue))
		}
		return out
	}
	if got, want := listTags(&fc.ListTagResourcesRequest{ResourceType: dara.String("FUNCTION")}), []string{"f1:team=a", "f1:env=prod", "f2:env=prod"}; !slices.Equal(got, want) {
		t.Errorf("ListTagResources: got %v, want %v", got, want)
	}
	if got, want := listTags(&fc.ListTagResourcesRequest{ResourceId: ids("f2")}), []string{"f2:env=prod"}; !slices.Equal(got, want) {
		t.Errorf("ListTagResources of f2: got %v, want %v", got, want)
	}
	if got, want := listTags(&fc.ListTagResourcesRequest{Tag: []*fc.ListTagResourcesRequestTag{{Key: dara.String("team"), Value: dara.String("a")}}}), []string{"f1:team=a", "f1:env=prod"}; !slices.Equal(got, want) {
		t.Errorf("ListTagResources with tag team=a: got %v, want %v", got, want)
	}
	f, err := c.GetFunction(dara.String("f1"), &fc.GetFunctionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tg := range f.Body.Tags {
		got = append(got, dara.StringValue(tg.Key)+"="+dara.StringValue(tg.Value))
	}
	if want := []string{"team=a", "env=prod"}; !slices.Equal(got, want) {
		t.Errorf("GetFunction tags: got %v, want %v", got, want)
	}

	if _, err := c.UntagResources(&fc.UntagResourcesRequest{ResourceId: ids("f1"), TagKey: dara.StringSlice([]string{"env"})}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UntagResources(&fc.UntagResourcesRequest{ResourceId: ids("f2"), All: dara.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if got, want := listTags(&fc.ListTagResourcesRequest{}), []string{"f1:team=a"}; !slices.Equal(got, want) {
		t.Errorf("after untag: got %v, want %v", got, want)
	}

	// UpdateFunction takes the tags GetFunction gave back, and no others.
	body := `{"description":"d","tags":[{"Key":"team","Value":"a"}]}`
	if resp, eb := (signedRequest{method: "PUT", path: "/" + api.Version + "/functions/f1", body: []byte(body)}).do(t, addr); resp.StatusCode != 200 {
		t.Errorf("UpdateFunction with the function's own tags: got %d %s, want 200", resp.StatusCode, eb.Message)
	}
	body = `{"tags":[{"Key":"team","Value":"b"}]}`
	if resp, eb := (signedRequest{method: "PUT", path: "/" + api.Version + "/functions/f1", body: []byte(body)}).do(t, addr); resp.StatusCode != 400 || !strings.Contains(eb.Message, "TagResources") {
		t.Errorf("UpdateFunction changing tags: got %d %s, want 400 pointing at TagResources", resp.StatusCode, eb.Message)
	}

	errs := []struct {
		name       string
		call       func() error
		code       string
		wantStatus int
	}{
		{"missing function", func() error {
			_, err := c.TagResources(&fc.TagResourcesRequest{Body: &fc.TagResourcesInput{ResourceId: ids("nope"), Tag: []*fc.Tag{tag("a", "b")}}})
			return err
		}, CodeFunctionNotFound, 404},
		{"other resource type", func() error {
			_, err := c.TagResources(&fc.TagResourcesRequest{Body: &fc.TagResourcesInput{ResourceId: ids("f1"), ResourceType: dara.String("ALIAS"), Tag: []*fc.Tag{tag("a", "b")}}})
			return err
		}, CodeInvalidArgument, 400},
		{"reserved key", func() error {
			_, err := c.TagResources(&fc.TagResourcesRequest{Body: &fc.TagResourcesInput{ResourceId: ids("f1"), Tag: []*fc.Tag{tag("acs:x", "b")}}})
			return err
		}, CodeInvalidArgument, 400},
		{"untag without keys", func() error {
			_, err := c.UntagResources(&fc.UntagResourcesRequest{ResourceId: ids("f1")})
			return err
		}, CodeInvalidArgument, 400},
	}
	for _, e := range errs {
		code, status := sdkCode(e.call())
		if code != e.code || status != e.wantStatus {
			t.Errorf("%s: got %q/%d, want %q/%d", e.name, code, status, e.code, e.wantStatus)
		}
	}
}

// revisionPools records the revision each Update brings per function.
type revisionPools struct {
	fakePools
	mu   sync.Mutex
	revs map[string][]uint64
}

func (p *revisionPools) Update(fn *api.Function) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.revs[fn.FunctionName] = append(p.revs[fn.FunctionName], fn.Revision)
}

// TestTagsKeepInstances: tagging a function tells the scheduler of no new
// configuration (the same revision), so its instances do not drain.
func TestTagsKeepInstances(t *testing.T) {
	pools := &revisionPools{revs: map[string][]uint64{}}
	addr := testServer(t, Options{Pools: pools})
	c := sdkClient(t, addr)
	createSDKFunction(t, c, "f", nil)
	if _, err := c.TagResources(&fc.TagResourcesRequest{Body: &fc.TagResourcesInput{
		ResourceId: dara.StringSlice([]string{"f"}), Tag: []*fc.Tag{tag("team", "a")},
	}}); err != nil {
		t.Fatal(err)
	}
	pools.mu.Lock()
	revs := pools.revs["f"]
	pools.mu.Unlock()
	if len(revs) != 2 || revs[0] != revs[1] {
		t.Errorf("revisions the scheduler saw: got %v, want the create's twice", revs)
	}
}
