package iam

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

const (
	serviceKeyID     = "FCDSERVICEKEY"
	serviceKeySecret = "service-secret"
)

// stsEnv is a Store with roles behind an Issuer on a loopback httptest
// server, counting AssumeRole calls.
type stsEnv struct {
	store *Store
	srv   *httptest.Server
	calls atomic.Int64
}

func newSTSEnv(t *testing.T, opts IssuerOptions) *stsEnv {
	t.Helper()
	e := &stsEnv{store: openStore(t, openDB(t), Options{AccountID: "123"})}
	mustCreateRole(t, e.store, "puller", "examples/*")
	if opts.Keys == nil {
		opts.Keys = map[string]string{serviceKeyID: serviceKeySecret}
	}
	issuer := NewIssuer(e.store, opts)
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.calls.Add(1)
		issuer.ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *stsEnv) client(creds aws.CredentialsProvider) *sts.Client {
	return sts.New(sts.Options{
		BaseEndpoint: aws.String(e.srv.URL),
		Region:       "cn-hangzhou",
		Credentials:  creds,
	})
}

func TestAssumeRoleWithSDK(t *testing.T) {
	e := newSTSEnv(t, IssuerOptions{})
	signed := credentials.NewStaticCredentialsProvider(serviceKeyID, serviceKeySecret, "")
	const roleARN = "acs:ram::123:role/puller"

	tests := []struct {
		name     string
		creds    aws.CredentialsProvider
		arn      string
		duration int32
		wantCode string
	}{
		{"ok", signed, roleARN, 900, ""},
		{"ok default duration", signed, roleARN, 0, ""},
		{"ok max duration", signed, roleARN, 43200, ""},
		{"unsigned", aws.AnonymousCredentials{}, roleARN, 900, "InvalidClientTokenId"},
		{"unknown key", credentials.NewStaticCredentialsProvider("NOSUCHKEY", serviceKeySecret, ""), roleARN, 900, "InvalidClientTokenId"},
		{"bad signature", credentials.NewStaticCredentialsProvider(serviceKeyID, "wrong", ""), roleARN, 900, "SignatureDoesNotMatch"},
		{"duration too short", signed, roleARN, 899, "ValidationError"},
		{"duration too long", signed, roleARN, 43201, "ValidationError"},
		{"malformed arn", signed, "arn:aws:iam::123:role/puller-with-a-long-name", 900, "ValidationError"},
		{"unknown role", signed, "acs:ram::123:role/nobody", 900, "NoSuchEntity"},
		{"other account", signed, "acs:ram::456:role/puller", 900, "NoSuchEntity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &sts.AssumeRoleInput{RoleArn: aws.String(tt.arn), RoleSessionName: aws.String("fcd-test")}
			if tt.duration != 0 {
				in.DurationSeconds = aws.Int32(tt.duration)
			}
			before := time.Now()
			out, err := e.client(tt.creds).AssumeRole(context.Background(), in)
			if tt.wantCode != "" {
				var apiErr smithy.APIError
				if !errors.As(err, &apiErr) {
					t.Fatalf("AssumeRole error = %v, want API error %s", err, tt.wantCode)
				}
				if apiErr.ErrorCode() != tt.wantCode {
					t.Errorf("error code = %s (%v), want %s", apiErr.ErrorCode(), err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("AssumeRole: %v", err)
			}
			c := out.Credentials
			if !strings.HasPrefix(aws.ToString(c.AccessKeyId), "STS.") || aws.ToString(c.SecretAccessKey) == "" || aws.ToString(c.SessionToken) == "" {
				t.Fatalf("credentials = %+v, want STS.* key, secret and token", c)
			}
			d := time.Duration(tt.duration) * time.Second
			if d == 0 {
				d = DefaultDuration
			}
			if exp := aws.ToTime(c.Expiration); exp.Before(before.Add(d).Truncate(time.Second)) || exp.After(time.Now().Add(d)) {
				t.Errorf("expiration = %s, want about %s from now", exp, d)
			}
			if got := aws.ToString(out.AssumedRoleUser.Arn); got != "acs:ram::123:assumed-role/puller/fcd-test" {
				t.Errorf("assumed role ARN = %s, want acs:ram::123:assumed-role/puller/fcd-test", got)
			}
			_, patterns, err := e.store.PullPatterns(context.Background(), aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
			if err != nil || len(patterns) != 1 || patterns[0] != "examples/*" {
				t.Errorf("PullPatterns = %q, %v; want [examples/*], nil", patterns, err)
			}
		})
	}
}

// TestAssumeRoleStaleSignature checks that a request signed at a time far
// from the issuer's clock is refused, so a captured request cannot be
// replayed later.
func TestAssumeRoleStaleSignature(t *testing.T) {
	e := newSTSEnv(t, IssuerOptions{Now: func() time.Time { return time.Now().Add(time.Hour) }})
	_, err := e.client(credentials.NewStaticCredentialsProvider(serviceKeyID, serviceKeySecret, "")).AssumeRole(context.Background(),
		&sts.AssumeRoleInput{RoleArn: aws.String("acs:ram::123:role/puller"), RoleSessionName: aws.String("s1")})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "SignatureDoesNotMatch" {
		t.Fatalf("AssumeRole error = %v, want SignatureDoesNotMatch", err)
	}
}

// TestProviderRefreshesBeforeExpiry drives the SDK's CredentialsCache
// through Provider. The issuer's clock runs behind, so the credentials it
// issues (900 s) expire 30 s from the real now: with an expiry window of a
// minute they are already due for refresh and every Retrieve assumes the
// role again; with a window of 10 s the cache keeps them.
func TestProviderRefreshesBeforeExpiry(t *testing.T) {
	const roleARN = "acs:ram::123:role/puller"
	tests := []struct {
		name      string
		window    time.Duration
		wantCalls int64
	}{
		{"within window refreshes", time.Minute, 3},
		{"outside window cached", 10 * time.Second, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newSTSEnv(t, IssuerOptions{Now: func() time.Time { return time.Now().Add(-900*time.Second + 30*time.Second) }})
			p, err := NewProvider(ProviderOptions{
				Endpoint:        e.srv.URL,
				AccessKeyID:     serviceKeyID,
				SecretAccessKey: serviceKeySecret,
				Duration:        900 * time.Second,
				ExpiryWindow:    tt.window,
			})
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for range 3 {
				c, err := p.Retrieve(context.Background(), roleARN)
				if err != nil {
					t.Fatalf("Retrieve: %v", err)
				}
				if _, err := e.store.VerifySession(context.Background(), c.AccessKeyID, c.SecretAccessKey, c.SessionToken); err != nil {
					t.Errorf("Retrieve returned credentials the issuer refuses: %v", err)
				}
				seen[c.AccessKeyID] = true
			}
			if got := e.calls.Load(); got != tt.wantCalls {
				t.Errorf("AssumeRole calls = %d, want %d", got, tt.wantCalls)
			}
			if got := int64(len(seen)); got != tt.wantCalls {
				t.Errorf("distinct access keys = %d, want %d", got, tt.wantCalls)
			}
		})
	}
}

func TestProviderInvalidateAndErrors(t *testing.T) {
	e := newSTSEnv(t, IssuerOptions{})
	p, err := NewProvider(ProviderOptions{Endpoint: e.srv.URL, AccessKeyID: serviceKeyID, SecretAccessKey: serviceKeySecret})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const roleARN = "acs:ram::123:role/puller"
	c1, err := p.Retrieve(ctx, roleARN)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := p.Retrieve(ctx, roleARN)
	if err != nil {
		t.Fatal(err)
	}
	if c1.AccessKeyID != c2.AccessKeyID {
		t.Errorf("second Retrieve got key %s, want cached %s", c2.AccessKeyID, c1.AccessKeyID)
	}
	p.Invalidate(roleARN)
	c3, err := p.Retrieve(ctx, roleARN)
	if err != nil {
		t.Fatal(err)
	}
	if c3.AccessKeyID == c1.AccessKeyID {
		t.Errorf("Retrieve after Invalidate got the cached key %s, want a new one", c3.AccessKeyID)
	}
	if got := e.calls.Load(); got != 2 {
		t.Errorf("AssumeRole calls = %d, want 2", got)
	}

	_, err = p.Retrieve(ctx, "acs:ram::123:role/nobody")
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "NoSuchEntity" {
		t.Errorf("Retrieve(unknown role) error = %v, want NoSuchEntity", err)
	}
}
