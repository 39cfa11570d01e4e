package iam

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

func TestVerifySession(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	s := openStore(t, openDB(t), Options{AccountID: "1", Now: func() time.Time { return now }})
	other := openStore(t, openDB(t), Options{AccountID: "1"}) // different session key
	role := mustCreateRole(t, s, "puller", "examples/*")

	good, err := s.IssueSession(ctx, role.ARN, "test", now, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	expired, err := s.IssueSession(ctx, role.ARN, "test", now.Add(-2*time.Hour), now.Add(-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.IssueSession(ctx, role.ARN, "test", now, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.IssueSession(ctx, role.ARN, "test", now, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name                string
		akid, secret, token string
		want                error
	}{
		{"valid", good.AccessKeyID, good.SecretAccessKey, good.SessionToken, nil},
		{"expired", expired.AccessKeyID, expired.SecretAccessKey, expired.SessionToken, ErrExpiredCredentials},
		{"forged by another key", foreign.AccessKeyID, foreign.SecretAccessKey, foreign.SessionToken, ErrInvalidCredentials},
		{"claims altered", good.AccessKeyID, good.SecretAccessKey, alterExpiry(t, good.SessionToken), ErrInvalidCredentials},
		{"wrong secret", good.AccessKeyID, second.SecretAccessKey, good.SessionToken, ErrInvalidCredentials},
		{"token of another key id", good.AccessKeyID, good.SecretAccessKey, second.SessionToken, ErrInvalidCredentials},
		{"garbage", good.AccessKeyID, good.SecretAccessKey, "nope", ErrInvalidCredentials},
		{"empty", "", "", "", ErrInvalidCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sess, err := s.VerifySession(ctx, tt.akid, tt.secret, tt.token)
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifySession error = %v, want %v", err, tt.want)
			}
			if tt.want != nil {
				if !errdefs.IsUnauthorized(err) {
					t.Errorf("error %v is not Unauthorized", err)
				}
				return
			}
			if sess.RoleARN != role.ARN || sess.AccessKeyID != good.AccessKeyID || !sess.Expiration.Equal(good.Expiration) {
				t.Errorf("session = %+v, want role %s, key %s, expiry %s", sess, role.ARN, good.AccessKeyID, good.Expiration)
			}
		})
	}

	if err := s.DeleteRole(ctx, "puller"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PullPatterns(ctx, good.AccessKeyID, good.SecretAccessKey, good.SessionToken); !errdefs.IsNotFound(err) {
		t.Errorf("PullPatterns after role deletion error = %v, want NotFound", err)
	}
}

// alterExpiry rewrites the expiry in a token's claims, keeping the old MAC.
func alterExpiry(t *testing.T, token string) string {
	t.Helper()
	body := strings.TrimPrefix(token, tokenPrefix)
	claims, mac, _ := strings.Cut(body, ".")
	raw, err := base64.RawURLEncoding.DecodeString(claims)
	if err != nil {
		t.Fatal(err)
	}
	altered := strings.Replace(string(raw), `"e":`, `"e":9`, 1)
	return tokenPrefix + base64.RawURLEncoding.EncodeToString([]byte(altered)) + "." + mac
}
