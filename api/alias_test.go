package api

import (
	"errors"
	"testing"
	"time"
)

func TestAliasValidate(t *testing.T) {
	str := func(s string) *string { return &s }
	cases := []struct {
		name string
		in   AliasInput
		ok   bool
	}{
		{"plain", AliasInput{AliasName: str("prod"), VersionID: str("1")}, true},
		{"split", AliasInput{AliasName: str("prod"), VersionID: str("1"), AdditionalVersionWeight: map[string]float32{"2": 0.2}}, true},
		{"weight 0 and 1", AliasInput{AliasName: str("p"), VersionID: str("1"), AdditionalVersionWeight: map[string]float32{"2": 1}}, true},
		{"no version", AliasInput{AliasName: str("prod")}, false},
		{"LATEST version", AliasInput{AliasName: str("prod"), VersionID: str("LATEST")}, false},
		{"name LATEST", AliasInput{AliasName: str("LATEST"), VersionID: str("1")}, false},
		{"numeric name", AliasInput{AliasName: str("12"), VersionID: str("1")}, false},
		{"weight over 1", AliasInput{AliasName: str("p"), VersionID: str("1"), AdditionalVersionWeight: map[string]float32{"2": 1.01}}, false},
		{"negative weight", AliasInput{AliasName: str("p"), VersionID: str("1"), AdditionalVersionWeight: map[string]float32{"2": -0.5}}, false},
		{"two additional", AliasInput{AliasName: str("p"), VersionID: str("1"), AdditionalVersionWeight: map[string]float32{"2": 0.1, "3": 0.1}}, false},
		{"additional is main", AliasInput{AliasName: str("p"), VersionID: str("1"), AdditionalVersionWeight: map[string]float32{"1": 0.1}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewAlias(&tc.in, time.Now())
			if tc.ok != (err == nil) {
				t.Fatalf("got %v, want ok %v", err, tc.ok)
			}
			var ie *InvalidError
			if err != nil && !errors.As(err, &ie) {
				t.Fatalf("got %T, want *InvalidError", err)
			}
		})
	}
}

func TestAliasPick(t *testing.T) {
	a := &Alias{VersionID: "1", AdditionalVersionWeight: map[string]float32{"2": 0.25}}
	for _, tc := range []struct {
		u    float64
		want string
	}{{0, "2"}, {0.2499, "2"}, {0.25, "1"}, {0.9999, "1"}} {
		if got := a.Pick(tc.u); got != tc.want {
			t.Errorf("Pick(%v): got %s, want %s", tc.u, got, tc.want)
		}
	}
	if got := (&Alias{VersionID: "3"}).Pick(0); got != "3" {
		t.Errorf("Pick without a split: got %s, want 3", got)
	}
}
