package api

import (
	"strings"
	"testing"
)

// TestDecodeInputEmptyValues: what the SDKs send for fields left unset
// (null lists and maps, empty objects) asks for nothing and is accepted;
// a value in a field fcd does not implement is refused naming it.
func TestDecodeInputEmptyValues(t *testing.T) {
	tests := []struct {
		body string
		want string // "" means accepted, else a substring of the error
	}{
		{`{"layers":null,"tags":null,"environmentVariables":null}`, ""},
		{`{"vpcConfig":{"vpcId":"","vSwitchIds":null,"securityGroupId":""}}`, ""},
		{`{"logConfig":{},"nasConfig":{"mountPoints":[],"userId":0},"enableLongLiving":false}`, ""},
		{`{"customContainerConfig":{"registryConfig":{"authConfig":{}},"command":null}}`, ""},
		{`{"vpcConfig":{"vpcId":"vpc-1"}}`, "vpcConfig is not supported here"},
		{`{"nasConfig":{"userId":10}}`, "nasConfig is not supported here"},
		{`{"VpcConfig":{"vpcId":"vpc-1"}}`, "VpcConfig is not supported here"},
		{`{"instanceLifecycleConfig":{"preStop":{"command":["x"]}}}`, "instanceLifecycleConfig.preStop.command"},
		{`{"somethingNew":1}`, "somethingNew is not supported here"},
		{`{"somethingNew":null}`, ""},
		// What GetFunction answered, sent back: server-owned fields are ignored.
		{`{"functionArn":"acs:fc:local:1:functions/f","functionId":"x","state":"Active","lastUpdateStatus":"Successful","createdTime":"2026-01-01T00:00:00Z","customContainerConfig":{"image":"r/i:t","resolvedImageUri":"r/i@sha256:00","accelerationInfo":{"status":"Ready"}}}`, ""},
	}
	for _, tc := range tests {
		_, err := DecodeInput([]byte(tc.body))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: got %v, want accepted", tc.body, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want an error with %q", tc.body, err, tc.want)
		}
	}
}

func TestInjectCredentials(t *testing.T) {
	for _, tc := range []struct {
		mode         string
		env, request bool
	}{{"", true, true}, {"None", true, true}, {"Env", false, true}, {"Request", true, false}, {"All", false, false}} {
		f := &Function{DisableInjectCredentials: tc.mode}
		if f.InjectsEnv() != tc.env || f.InjectsRequest() != tc.request {
			t.Errorf("%q: got env %v request %v, want %v %v", tc.mode, f.InjectsEnv(), f.InjectsRequest(), tc.env, tc.request)
		}
	}
}

func TestResolvConf(t *testing.T) {
	d := &CustomDNS{NameServers: []string{"10.0.0.53", "fd00::53"}, Searches: []string{"a.example", "b.example"},
		DNSOptions: []DNSOption{{Name: "ndots", Value: "2"}, {Name: "rotate"}}}
	if err := d.validate(); err != nil {
		t.Fatal(err)
	}
	want := "nameserver 10.0.0.53\nnameserver fd00::53\nsearch a.example b.example\noptions ndots:2 rotate\n"
	if got := d.ResolvConf(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, bad := range []*CustomDNS{
		{NameServers: []string{"dns.example"}},
		{NameServers: []string{"1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4"}},
		{Searches: []string{"a b"}},
		{DNSOptions: []DNSOption{{Name: "x\nnameserver 6.6.6.6"}}},
	} {
		if err := bad.validate(); err == nil {
			t.Errorf("%+v: got valid, want an error", bad)
		}
	}
}
