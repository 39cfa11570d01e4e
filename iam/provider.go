package iam

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Provider defaults.
const (
	DefaultRegion       = "us-east-1"
	DefaultSessionName  = "fcd"
	DefaultExpiryWindow = 5 * time.Minute
)

// ProviderOptions configure a Provider.
type ProviderOptions struct {
	// Endpoint is the base URL of the STS-compatible service, e.g. the
	// embedded Issuer's http://127.0.0.1:PORT/sts. Required.
	Endpoint string
	// Region is the SigV4 signing region. Zero means DefaultRegion; the
	// embedded Issuer accepts any.
	Region string
	// AccessKeyID and SecretAccessKey are the platform's service key that
	// signs AssumeRole calls. Required.
	AccessKeyID, SecretAccessKey string
	// SessionName is the RoleSessionName sent to AssumeRole. Zero means
	// DefaultSessionName.
	SessionName string
	// Duration is the DurationSeconds asked for. Zero means the SDK's
	// default (15 minutes).
	Duration time.Duration
	// ExpiryWindow is how long before expiry cached credentials are
	// replaced: a caller never receives credentials that expire within
	// ExpiryWindow of the call. Zero means DefaultExpiryWindow. It must be
	// shorter than the credentials' lifetime, or every call assumes the
	// role afresh.
	ExpiryWindow time.Duration
	// HTTPClient sends the STS calls. Nil means the SDK's default client.
	HTTPClient sts.HTTPClient
}

// Provider returns temporary credentials for roles by calling AssumeRole
// through the AWS SDK (stscreds.AssumeRoleProvider behind an
// aws.CredentialsCache), one cache per role ARN. It is safe for concurrent
// use; concurrent callers for the same role share one AssumeRole call.
//
// Callers should call Retrieve for each request they sign rather than keep
// the result: the cache hands out the same credentials until they come
// within ExpiryWindow of expiry and then assumes the role again, so a long
// background fetch never uses an expired credential.
type Provider struct {
	client *sts.Client
	opts   ProviderOptions

	mu     sync.Mutex
	caches map[string]*aws.CredentialsCache
}

// NewProvider returns a Provider for opts.
func NewProvider(opts ProviderOptions) (*Provider, error) {
	if opts.Endpoint == "" {
		return nil, errors.New("iam: provider needs an STS endpoint")
	}
	if opts.AccessKeyID == "" || opts.SecretAccessKey == "" {
		return nil, errors.New("iam: provider needs a service access key")
	}
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	if opts.SessionName == "" {
		opts.SessionName = DefaultSessionName
	}
	if opts.ExpiryWindow == 0 {
		opts.ExpiryWindow = DefaultExpiryWindow
	}
	client := sts.New(sts.Options{
		BaseEndpoint: aws.String(opts.Endpoint),
		Region:       opts.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(opts.AccessKeyID, opts.SecretAccessKey, ""),
		HTTPClient:   opts.HTTPClient,
	})
	return &Provider{client: client, opts: opts, caches: make(map[string]*aws.CredentialsCache)}, nil
}

// Retrieve returns unexpired temporary credentials for the role roleARN,
// from the cache or from a fresh AssumeRole call. STS errors come back as
// the SDK reports them (a smithy.APIError carrying the STS error code).
func (p *Provider) Retrieve(ctx context.Context, roleARN string) (aws.Credentials, error) {
	creds, err := p.cache(roleARN).Retrieve(ctx)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("assume role %s: %w", roleARN, err)
	}
	return creds, nil
}

// Invalidate drops the cached credentials of roleARN, so the next Retrieve
// assumes the role again (for example after a registry refused them).
func (p *Provider) Invalidate(roleARN string) {
	p.mu.Lock()
	c := p.caches[roleARN]
	p.mu.Unlock()
	if c != nil {
		c.Invalidate()
	}
}

func (p *Provider) cache(roleARN string) *aws.CredentialsCache {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.caches[roleARN]
	if !ok {
		assume := stscreds.NewAssumeRoleProvider(p.client, roleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = p.opts.SessionName
			if p.opts.Duration != 0 {
				o.Duration = p.opts.Duration
			}
		})
		c = aws.NewCredentialsCache(assume, func(o *aws.CredentialsCacheOptions) {
			o.ExpiryWindow = p.opts.ExpiryWindow
		})
		p.caches[roleARN] = c
	}
	return c
}
