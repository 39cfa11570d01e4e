package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Signature V3 (ACS3-HMAC-SHA256), as the Alibaba Cloud SDKs compute it:
//
//	CanonicalRequest = Method \n CanonicalURI \n CanonicalQuery \n
//	                   CanonicalHeaders \n SignedHeaders \n HashedPayload
//	StringToSign     = "ACS3-HMAC-SHA256" \n hex(sha256(CanonicalRequest))
//	Signature        = hex(hmac-sha256(AccessKeySecret, StringToSign))
//	Authorization: ACS3-HMAC-SHA256 Credential=<AK>,SignedHeaders=a;b,Signature=<hex>
//
// CanonicalURI is the request path as sent. CanonicalQuery sorts the decoded
// parameters by name and percent-encodes each value (RFC 3986: space as %20,
// '*' as %2A, '~' kept). CanonicalHeaders holds, sorted and lower-cased,
// host, content-type and every x-acs-* header, one "name:value" a line.
// HashedPayload is the hex SHA-256 of the body, sent as x-acs-content-sha256.

// Algorithm is the only signature algorithm fcd accepts.
const Algorithm = "ACS3-HMAC-SHA256"

// Signature headers.
const (
	HeaderAuthorization = "Authorization"
	HeaderDate          = "x-acs-date"
	HeaderContentSHA256 = "x-acs-content-sha256"
	HeaderNonce         = "x-acs-signature-nonce"
	HeaderSecurityToken = "x-acs-security-token"
	// DateFormat is the layout of x-acs-date.
	DateFormat = "2006-01-02T15:04:05Z"
)

// requiredSignedHeaders must be covered by every signature, so a signature
// cannot be replayed against another host, time or body.
var requiredSignedHeaders = []string{"host", HeaderContentSHA256, HeaderDate, HeaderNonce}

// ErrBadAuthorization is an Authorization header that fcd cannot parse or
// that does not cover the headers a signature must cover.
var ErrBadAuthorization = errors.New("malformed Authorization header")

// Authorization is a parsed V3 Authorization header.
type Authorization struct {
	AccessKeyID   string
	SignedHeaders []string // lower-case, in the order given
	Signature     string   // lower-case hex
}

// ParseAuthorization parses "ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..".
func ParseAuthorization(h string) (Authorization, error) {
	var a Authorization
	rest, ok := strings.CutPrefix(h, Algorithm+" ")
	if !ok {
		return a, fmt.Errorf("%w: want algorithm %s", ErrBadAuthorization, Algorithm)
	}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return a, fmt.Errorf("%w: %q is not key=value", ErrBadAuthorization, part)
		}
		switch k {
		case "Credential":
			a.AccessKeyID = v
		case "SignedHeaders":
			a.SignedHeaders = strings.Split(strings.ToLower(v), ";")
		case "Signature":
			a.Signature = strings.ToLower(v)
		}
	}
	if a.AccessKeyID == "" || a.Signature == "" || len(a.SignedHeaders) == 0 {
		return a, fmt.Errorf("%w: Credential, SignedHeaders and Signature are required", ErrBadAuthorization)
	}
	for _, r := range requiredSignedHeaders {
		if !contains(a.SignedHeaders, r) {
			return a, fmt.Errorf("%w: SignedHeaders must include %s", ErrBadAuthorization, r)
		}
	}
	return a, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Request is what a signature covers. Header looks a header up by its
// lower-case name and returns all its values.
type Request struct {
	Method      string
	Path        string
	Query       url.Values
	Header      func(name string) []string
	PayloadHash string
}

// CanonicalRequest returns the canonical request for r over signedHeaders.
func CanonicalRequest(r Request, signedHeaders []string) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(r.Path)
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.Query))
	b.WriteByte('\n')
	for _, h := range signedHeaders {
		vals := r.Header(h)
		trimmed := make([]string, len(vals))
		for i, v := range vals {
			trimmed[i] = strings.TrimSpace(v)
		}
		sort.Strings(trimmed)
		b.WriteString(h)
		b.WriteByte(':')
		b.WriteString(strings.Join(trimmed, ","))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(r.PayloadHash)
	return b.String()
}

func canonicalQuery(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		for _, v := range q[k] {
			parts = append(parts, k+"="+percentEncode(v))
		}
	}
	return strings.Join(parts, "&")
}

func percentEncode(s string) string {
	s = url.QueryEscape(s)
	s = strings.ReplaceAll(s, "+", "%20")
	s = strings.ReplaceAll(s, "*", "%2A")
	return strings.ReplaceAll(s, "%7E", "~")
}

// Sign returns the hex signature of canonicalRequest under secret.
func Sign(secret, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(Algorithm + "\n" + hex.EncodeToString(sum[:])))
	return hex.EncodeToString(m.Sum(nil))
}

// SignedHeaderNames lists the headers a signer covers, given the lower-case
// names of the headers it sends: host, content-type and every x-acs-* header,
// sorted.
func SignedHeaderNames(names []string) []string {
	var out []string
	for _, n := range names {
		if n == "host" || n == "content-type" || strings.HasPrefix(n, "x-acs-") {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// AuthorizationHeader formats the Authorization header value.
func AuthorizationHeader(accessKeyID string, signedHeaders []string, signature string) string {
	return Algorithm + " Credential=" + accessKeyID + ",SignedHeaders=" + strings.Join(signedHeaders, ";") + ",Signature=" + signature
}

// HashPayload returns the hex SHA-256 of body, the x-acs-content-sha256 value.
func HashPayload(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// IsPayloadHash reports whether s has the form of an x-acs-content-sha256
// value: 64 lower-case hex digits, as HashPayload makes them.
func IsPayloadHash(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ParseDate parses x-acs-date.
func ParseDate(s string) (time.Time, error) {
	return time.Parse(DateFormat, s)
}

// SignRequest signs req, whose body is body, with the key id/secret: it
// sets x-acs-date, x-acs-signature-nonce, x-acs-content-sha256 and
// Authorization over host, content-type and every x-acs-* header, as the
// SDKs do. req.URL.Path must be the path as sent.
func SignRequest(req *http.Request, body []byte, id, secret string) error {
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return err
	}
	payload := HashPayload(body)
	req.Header.Set(HeaderDate, time.Now().UTC().Format(DateFormat))
	req.Header.Set(HeaderNonce, hex.EncodeToString(nonce[:]))
	req.Header.Set(HeaderContentSHA256, payload)
	names := []string{"host"}
	for k := range req.Header {
		names = append(names, strings.ToLower(k))
	}
	signed := SignedHeaderNames(names)
	r := Request{
		Method: req.Method,
		Path:   req.URL.EscapedPath(),
		Query:  req.URL.Query(),
		Header: func(name string) []string {
			if name == "host" {
				return []string{req.URL.Host}
			}
			return req.Header.Values(name)
		},
		PayloadHash: payload,
	}
	req.Header.Set(HeaderAuthorization, AuthorizationHeader(id, signed, Sign(secret, CanonicalRequest(r, signed))))
	return nil
}
