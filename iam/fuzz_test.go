package iam

import (
	"context"
	"errors"
	"testing"
	"time"
)

// FuzzVerifySession checks that no input panics VerifySession and that
// nothing but the issued triple itself verifies.
func FuzzVerifySession(f *testing.F) {
	now := time.Now()
	s, err := Open(openDBForFuzz(f), Options{AccountID: "1"})
	if err != nil {
		f.Fatal(err)
	}
	good, err := s.IssueSession(context.Background(), RoleARN("1", "r"), "fuzz", now, now.Add(time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good.AccessKeyID, good.SecretAccessKey, good.SessionToken)
	f.Add(good.AccessKeyID, good.SecretAccessKey, good.SessionToken+"x")
	f.Add("STS.X", "", tokenPrefix+".")
	f.Fuzz(func(t *testing.T, akid, secret, token string) {
		_, err := s.VerifySession(context.Background(), akid, secret, token)
		genuine := akid == good.AccessKeyID && secret == good.SecretAccessKey && token == good.SessionToken
		if genuine != (err == nil) {
			t.Fatalf("VerifySession(%q, %q, %q) error = %v, genuine = %v", akid, secret, token, err, genuine)
		}
		if err != nil && !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("error %v is not ErrInvalidCredentials", err)
		}
	})
}
