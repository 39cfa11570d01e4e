package proxy

import (
	"errors"
	"strings"
	"testing"

	fc "github.com/alibabacloud-go/fc-20230330/v4/client"
	"github.com/alibabacloud-go/tea/dara"

	"github.com/fcd-dev/fcd/api"
)

// statusPools reports a fixed status for every function: no instance
// runs, and the last start failed with err.
type statusPools struct {
	fakePools
	err error
}

func (p *statusPools) StartError(string) error { return p.err }

var _ StartErrors = (*statusPools)(nil)

// TestSDKProvisionConfigs: ListProvisionConfigs pages and filters by
// function; GetProvisionConfig says why provisioned instances do not run.
func TestSDKProvisionConfigs(t *testing.T) {
	pools := &statusPools{err: errors.New("FunctionNotStarted: pull r/i:t: not found")}
	st := newStore(t)
	addr := testServer(t, Options{Functions: st, Pools: pools, Provision: st})
	c := sdkClient(t, addr)
	for _, name := range []string{"p1", "p2", "p3"} {
		createSDKFunction(t, c, name, nil)
	}
	for name, n := range map[string]int64{"p1": 2, "p3": 1} {
		if _, err := c.PutProvisionConfig(dara.String(name), &fc.PutProvisionConfigRequest{Body: &fc.PutProvisionConfigInput{DefaultTarget: dara.Int64(n)}}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.GetProvisionConfig(dara.String("p1"), &fc.GetProvisionConfigRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if b := got.Body; dara.Int64Value(b.Target) != 2 || dara.Int64Value(b.Current) != 0 || dara.StringValue(b.CurrentError) != pools.err.Error() {
		t.Errorf("GetProvisionConfig: got target %d current %d currentError %q, want 2, 0, %q",
			dara.Int64Value(b.Target), dara.Int64Value(b.Current), dara.StringValue(b.CurrentError), pools.err)
	}

	list := func(req *fc.ListProvisionConfigsRequest) ([]string, string) {
		t.Helper()
		resp, err := c.ListProvisionConfigs(req)
		if err != nil {
			t.Fatal(err)
		}
		var arns []string
		for _, pc := range resp.Body.ProvisionConfigs {
			arns = append(arns, dara.StringValue(pc.FunctionArn))
		}
		return arns, dara.StringValue(resp.Body.NextToken)
	}
	arn := func(name string) string { return "acs:fc:local:0000000000000000:functions/" + name }
	page1, next := list(&fc.ListProvisionConfigsRequest{Limit: dara.Int32(1)})
	if len(page1) != 1 || page1[0] != arn("p1") || next == "" {
		t.Fatalf("first page: got %v next %q, want [p1] and a token", page1, next)
	}
	page2, next := list(&fc.ListProvisionConfigsRequest{Limit: dara.Int32(1), NextToken: dara.String(next)})
	if len(page2) != 1 || page2[0] != arn("p3") || next != "" {
		t.Fatalf("second page: got %v next %q, want [p3] and no token", page2, next)
	}
	if one, _ := list(&fc.ListProvisionConfigsRequest{FunctionName: dara.String("p3")}); len(one) != 1 || one[0] != arn("p3") {
		t.Errorf("functionName p3: got %v", one)
	}
	if none, _ := list(&fc.ListProvisionConfigsRequest{FunctionName: dara.String("p2")}); len(none) != 0 {
		t.Errorf("functionName p2 (no config): got %v, want none", none)
	}
	_, err = c.ListProvisionConfigs(&fc.ListProvisionConfigsRequest{Limit: dara.Int32(1000)})
	if code, status := sdkCode(err); code != CodeInvalidArgument || status != 400 {
		t.Errorf("limit 1000: got %q/%d, want InvalidArgument/400", code, status)
	}
}

func createSDKFunction(t *testing.T, c *fc.Client, name string, tags []*fc.Tag) {
	t.Helper()
	_, err := c.CreateFunction(&fc.CreateFunctionRequest{Body: &fc.CreateFunctionInput{
		FunctionName:          dara.String(name),
		Runtime:               dara.String(api.RuntimeCustomContainer),
		Tags:                  tags,
		CustomContainerConfig: &fc.CustomContainerConfig{Image: dara.String("r/i:t")},
	}})
	if err != nil {
		t.Fatalf("CreateFunction %s: %v", name, err)
	}
}

// TestSDKProvisionAndTriggerFields: PutProvisionConfig and CreateTrigger
// refuse, naming them, the fields fcd does not implement.
func TestSDKProvisionAndTriggerFields(t *testing.T) {
	st := newStore(t)
	addr := testServer(t, Options{Functions: st, Pools: &statusPools{}, Provision: st})
	c := sdkClient(t, addr)
	createSDKFunction(t, c, "p", nil)
	put := func(in *fc.PutProvisionConfigInput) error {
		in.DefaultTarget = dara.Int64(1)
		_, err := c.PutProvisionConfig(dara.String("p"), &fc.PutProvisionConfigRequest{Body: in})
		return err
	}
	trigger := func(in *fc.CreateTriggerInput) error {
		in.TriggerName, in.TriggerType = dara.String("http"), dara.String("http")
		if in.TriggerConfig == nil {
			in.TriggerConfig = dara.String(`{"authType":"anonymous"}`)
		}
		_, err := c.CreateTrigger(dara.String("p"), &fc.CreateTriggerRequest{Body: in})
		return err
	}
	tests := []struct {
		field string
		call  func() error
		ok    bool
	}{
		{"alwaysAllocateCPU", func() error { return put(&fc.PutProvisionConfigInput{AlwaysAllocateCPU: dara.Bool(true)}) }, true},
		{"alwaysAllocateCPU", func() error { return put(&fc.PutProvisionConfigInput{AlwaysAllocateCPU: dara.Bool(false)}) }, false},
		{"alwaysAllocateGPU", func() error { return put(&fc.PutProvisionConfigInput{AlwaysAllocateGPU: dara.Bool(true)}) }, false},
		{"scheduledActions", func() error {
			return put(&fc.PutProvisionConfigInput{ScheduledActions: []*fc.ScheduledAction{{Name: dara.String("a"), Target: dara.Int64(2)}}})
		}, false},
		{"targetTrackingPolicies", func() error {
			return put(&fc.PutProvisionConfigInput{TargetTrackingPolicies: []*fc.TargetTrackingPolicy{{Name: dara.String("t"), MetricTarget: dara.Float32(0.5)}}})
		}, false},
		{"invocationRole", func() error { return trigger(&fc.CreateTriggerInput{InvocationRole: dara.String("acs:ram::1:role/r")}) }, false},
		{"sourceArn", func() error { return trigger(&fc.CreateTriggerInput{SourceArn: dara.String("acs:oss:::b")}) }, false},
		{"disableURLInternet", func() error {
			return trigger(&fc.CreateTriggerInput{TriggerConfig: dara.String(`{"authType":"anonymous","disableURLInternet":true}`)})
		}, false},
		{"authConfig", func() error {
			return trigger(&fc.CreateTriggerInput{TriggerConfig: dara.String(`{"authType":"jwt","authConfig":"{}"}`)})
		}, false},
	}
	for _, tc := range tests {
		err := tc.call()
		if tc.ok {
			if err != nil {
				t.Errorf("%s: got %v, want it honoured", tc.field, err)
			}
			continue
		}
		if code, status := sdkCode(err); code != CodeInvalidArgument || status != 400 || !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), "not supported here") {
			t.Errorf("%s: got %q/%d (%v), want InvalidArgument/400 naming it as not supported here", tc.field, code, status, err)
		}
	}
}
