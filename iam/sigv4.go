package iam

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	sigV4Algorithm  = "AWS4-HMAC-SHA256"
	amzDateFormat   = "20060102T150405Z"
	stsSigningName  = "sts"
	defaultMaxSkew  = 15 * time.Minute
	credentialScope = "aws4_request"
)

// sigV4Auth is a parsed SigV4 Authorization header.
type sigV4Auth struct {
	accessKeyID   string
	date          string // yyyymmdd
	region        string
	service       string
	signedHeaders []string
	signature     string
}

// parseSigV4 parses "AWS4-HMAC-SHA256 Credential=AKID/date/region/service/
// aws4_request, SignedHeaders=a;b, Signature=hex".
func parseSigV4(header string) (sigV4Auth, error) {
	var a sigV4Auth
	alg, rest, ok := strings.Cut(header, " ")
	if !ok || alg != sigV4Algorithm {
		return a, fmt.Errorf("authorization is not %s", sigV4Algorithm)
	}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return a, fmt.Errorf("authorization component %q has no value", part)
		}
		switch k {
		case "Credential":
			f := strings.Split(v, "/")
			if len(f) != 5 || f[4] != credentialScope {
				return a, fmt.Errorf("credential %q is not AKID/date/region/service/%s", v, credentialScope)
			}
			a.accessKeyID, a.date, a.region, a.service = f[0], f[1], f[2], f[3]
		case "SignedHeaders":
			a.signedHeaders = strings.Split(v, ";")
		case "Signature":
			a.signature = v
		}
	}
	if a.accessKeyID == "" || len(a.signedHeaders) == 0 || a.signature == "" {
		return a, fmt.Errorf("authorization lacks Credential, SignedHeaders or Signature")
	}
	return a, nil
}

// sigV4Error is a verification failure with the AWS error code it maps to.
type sigV4Error struct {
	code string
	msg  string
}

func (e *sigV4Error) Error() string { return e.code + ": " + e.msg }

// verifySigV4 checks r's SigV4 signature, made over body, against the
// secret of its access key id. It recomputes the signature with the SDK's
// own signer over a copy of r that carries only the headers the client
// signed, so client and server canonicalise the same way. It returns the
// caller's access key id.
func verifySigV4(ctx context.Context, r *http.Request, body []byte, keys map[string]string, now time.Time, maxSkew time.Duration) (string, error) {
	header := r.Header.Get("Authorization")
	if header == "" {
		return "", &sigV4Error{"InvalidClientTokenId", "the request is not signed: Authorization header missing"}
	}
	a, err := parseSigV4(header)
	if err != nil {
		return "", &sigV4Error{"IncompleteSignature", err.Error()}
	}
	secret, ok := keys[a.accessKeyID]
	if !ok {
		return "", &sigV4Error{"InvalidClientTokenId", "the security token included in the request is invalid"}
	}
	if a.service != stsSigningName {
		return "", &sigV4Error{"SignatureDoesNotMatch", fmt.Sprintf("credential scope names service %q, want %q", a.service, stsSigningName)}
	}
	signingTime, err := time.Parse(amzDateFormat, r.Header.Get("X-Amz-Date"))
	if err != nil {
		return "", &sigV4Error{"IncompleteSignature", "X-Amz-Date missing or malformed"}
	}
	if signingTime.Format("20060102") != a.date {
		return "", &sigV4Error{"SignatureDoesNotMatch", "credential scope date does not match X-Amz-Date"}
	}
	if d := now.Sub(signingTime); d > maxSkew || d < -maxSkew {
		return "", &sigV4Error{"SignatureDoesNotMatch", fmt.Sprintf("signature expired: %s is more than %s from the server time %s",
			signingTime.Format(amzDateFormat), maxSkew, now.UTC().Format(amzDateFormat))}
	}

	clone, err := http.NewRequestWithContext(ctx, r.Method, r.URL.RequestURI(), nil)
	if err != nil {
		return "", &sigV4Error{"SignatureDoesNotMatch", err.Error()}
	}
	clone.Host = r.Host
	clone.URL.Host = r.Host
	for _, h := range a.signedHeaders {
		switch h {
		case "host":
		case "content-length":
			clone.ContentLength = r.ContentLength
		default:
			if vs := r.Header.Values(h); len(vs) > 0 {
				clone.Header[http.CanonicalHeaderKey(h)] = vs
			}
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: a.accessKeyID, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(ctx, creds, clone, hex.EncodeToString(sum[:]), a.service, a.region, signingTime); err != nil {
		return "", &sigV4Error{"SignatureDoesNotMatch", err.Error()}
	}
	want, err := parseSigV4(clone.Header.Get("Authorization"))
	if err != nil {
		return "", &sigV4Error{"SignatureDoesNotMatch", err.Error()}
	}
	if !hmac.Equal([]byte(want.signature), []byte(a.signature)) {
		return "", &sigV4Error{"SignatureDoesNotMatch", "the request signature we calculated does not match the signature you provided"}
	}
	return a.accessKeyID, nil
}
