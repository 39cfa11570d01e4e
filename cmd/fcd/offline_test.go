package main

import (
	"testing"

	"github.com/fcd-dev/fcd/api"
)

// TestInstanceSpecOffline: internetAccess false, and only false, makes
// the function's instances offline.
func TestInstanceSpecOffline(t *testing.T) {
	yes, no := true, false
	for _, tc := range []struct {
		access *bool
		want   bool
	}{{nil, false}, {&yes, false}, {&no, true}} {
		f := &api.Function{FunctionName: "f", InternetAccess: tc.access}
		if got := instanceSpec(f, Config{}).Offline; got != tc.want {
			t.Errorf("internetAccess %v: got Offline %v, want %v", tc.access, got, tc.want)
		}
	}
}
