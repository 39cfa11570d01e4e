package iam

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/containerd/errdefs"
)

func TestMatchRepository(t *testing.T) {
	tests := []struct {
		patterns []string
		repo     string
		want     bool
	}{
		{[]string{"examples/*"}, "examples/hello", true},
		{[]string{"examples/*"}, "examples/a/b", false},
		{[]string{"examples/*"}, "examples", false},
		{[]string{"examples/*"}, "other/hello", false},
		{[]string{"other/*", "examples/hello"}, "examples/hello", true},
		{[]string{"examples/**"}, "examples/a/b", true},
		{[]string{"examples/**"}, "examples/a", true},
		{[]string{"examples/**"}, "examples", false},
		{[]string{"examples/**"}, "examplesx/a", false},
		{[]string{"**"}, "anything/at/all", true},
		{[]string{"*"}, "top", true},
		{[]string{"*"}, "a/b", false},
		{nil, "examples/hello", false},
		{[]string{"**"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.repo, func(t *testing.T) {
			if got := MatchRepository(tt.patterns, tt.repo); got != tt.want {
				t.Errorf("MatchRepository(%q, %q) = %v, want %v", tt.patterns, tt.repo, got, tt.want)
			}
		})
	}
}

func TestParseRoleARN(t *testing.T) {
	tests := []struct {
		arn           string
		account, name string
		ok            bool
	}{
		{"acs:ram::123:role/puller", "123", "puller", true},
		{"acs:ram:::role/puller", "", "puller", true},
		{"arn:aws:iam::123:role/puller", "", "", false},
		{"acs:ram::123:user/puller", "", "", false},
		{"acs:ram::123:role/", "", "", false},
		{"acs:ram::123:role/a/b", "", "", false},
		{"acs:ram::123:role/..", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.arn, func(t *testing.T) {
			account, name, err := ParseRoleARN(tt.arn)
			if (err == nil) != tt.ok {
				t.Fatalf("ParseRoleARN(%q) error = %v, want ok=%v", tt.arn, err, tt.ok)
			}
			if err != nil {
				if !errdefs.IsInvalidArgument(err) {
					t.Errorf("got error %v, want an InvalidArgument", err)
				}
				return
			}
			if account != tt.account || name != tt.name {
				t.Errorf("got (%q, %q), want (%q, %q)", account, name, tt.account, tt.name)
			}
			if got := RoleARN(account, name); got != tt.arn {
				t.Errorf("RoleARN round trip = %q, want %q", got, tt.arn)
			}
		})
	}
}

func TestRoleStore(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, openDB(t), Options{AccountID: "123"})

	r := mustCreateRole(t, s, "puller", "examples/*")
	if r.ARN != "acs:ram::123:role/puller" {
		t.Errorf("ARN = %q, want acs:ram::123:role/puller", r.ARN)
	}
	if r.CreatedTime.IsZero() {
		t.Error("CreatedTime is zero, want set")
	}
	mustCreateRole(t, s, "another", "other/*")

	errCases := []struct {
		name  string
		role  Role
		check func(error) bool
	}{
		{"duplicate", Role{Name: "puller"}, errdefs.IsAlreadyExists},
		{"bad name", Role{Name: "a/b"}, errdefs.IsInvalidArgument},
		{"empty name", Role{}, errdefs.IsInvalidArgument},
		{"dot name", Role{Name: "."}, errdefs.IsInvalidArgument},
		{"dot-dot name", Role{Name: ".."}, errdefs.IsInvalidArgument},
		{"bad pattern", Role{Name: "x", Repositories: []string{"examples/["}}, errdefs.IsInvalidArgument},
		{"empty pattern", Role{Name: "x", Repositories: []string{""}}, errdefs.IsInvalidArgument},
	}
	for _, tt := range errCases {
		t.Run("create "+tt.name, func(t *testing.T) {
			_, err := s.CreateRole(ctx, tt.role)
			if !tt.check(err) {
				t.Errorf("CreateRole(%+v) error = %v, want the %s category", tt.role, err, tt.name)
			}
		})
	}

	got, err := s.GetRoleByARN(ctx, "acs:ram::123:role/puller")
	if err != nil {
		t.Fatalf("GetRoleByARN: %v", err)
	}
	if !got.Allows("examples/hello") || got.Allows("other/hello") {
		t.Errorf("role %+v: Allows(examples/hello), Allows(other/hello) = %v, %v; want true, false",
			got, got.Allows("examples/hello"), got.Allows("other/hello"))
	}
	for _, arn := range []string{"acs:ram::999:role/puller", "acs:ram::123:role/missing"} {
		if _, err := s.GetRoleByARN(ctx, arn); !errors.Is(err, ErrRoleNotFound) || !errdefs.IsNotFound(err) {
			t.Errorf("GetRoleByARN(%s) error = %v, want ErrRoleNotFound", arn, err)
		}
	}
	if _, err := s.GetRoleByARN(ctx, "puller"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("GetRoleByARN(puller) error = %v, want InvalidArgument", err)
	}

	roles, err := s.ListRoles(ctx)
	if err != nil {
		t.Fatalf("ListRoles: %v", err)
	}
	if len(roles) != 2 || roles[0].Name != "another" || roles[1].Name != "puller" {
		t.Errorf("ListRoles = %+v, want [another puller]", roles)
	}

	if err := s.DeleteRole(ctx, "another"); err != nil {
		t.Fatalf("DeleteRole: %v", err)
	}
	if err := s.DeleteRole(ctx, "another"); !errdefs.IsNotFound(err) {
		t.Errorf("second DeleteRole error = %v, want NotFound", err)
	}
	if _, err := s.GetRole(ctx, "another"); !errdefs.IsNotFound(err) {
		t.Errorf("GetRole after delete error = %v, want NotFound", err)
	}
}

// TestRolesAndSessionsSurviveReopen checks that roles and the session key
// are durable: credentials issued before a restart still verify after it.
func TestRolesAndSessionsSurviveReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fcd.db")
	db := openDBAt(t, path)
	s := openStore(t, db, Options{AccountID: "1"})
	r := mustCreateRole(t, s, "puller", "examples/*")
	creds, err := s.IssueSession(ctx, r.ARN, "test", s.now(), s.now().Add(DefaultDuration))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := openStore(t, openDBAt(t, path), Options{AccountID: "1"})
	if _, err := s2.GetRole(ctx, "puller"); err != nil {
		t.Errorf("GetRole after reopen: %v", err)
	}
	arn, patterns, err := s2.PullPatterns(ctx, creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken)
	if err != nil {
		t.Fatalf("PullPatterns after reopen: %v", err)
	}
	if arn != r.ARN || len(patterns) != 1 || patterns[0] != "examples/*" {
		t.Errorf("PullPatterns = %q, %q; want %q, [examples/*]", arn, patterns, r.ARN)
	}
}
