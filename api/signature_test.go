package api

import (
	"errors"
	"net/url"
	"testing"
)

// TestSignMatchesSDKVector checks the canonical request and signature against
// the vector the Alibaba Cloud SDK's own tests use for GetAuthorization.
func TestSignMatchesSDKVector(t *testing.T) {
	headers := map[string][]string{"x-acs-test": {"https", "http"}}
	r := Request{
		Method:      "",
		Path:        "/",
		Query:       url.Values{"test": {"ok"}, "empty": {""}},
		Header:      func(n string) []string { return headers[n] },
		PayloadHash: "55e12e91650d2fec56ec74e1d3e4ddbfce2ef3a65890c2a19ecf88a307e76a23",
	}
	signed := SignedHeaderNames([]string{"x-acs-test", "user-agent"})
	got := AuthorizationHeader("acesskey", signed, Sign("secret", CanonicalRequest(r, signed)))
	want := "ACS3-HMAC-SHA256 Credential=acesskey,SignedHeaders=x-acs-test,Signature=4ab59fffe3c5738ff8a2729f90cc04fe18b02a4b15b2102cbaf92f9ff3df2ea3"
	if got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestCanonicalQueryEncoding(t *testing.T) {
	q := url.Values{"b": {"a b*c~d"}, "a": {"x+y/z"}}
	got := canonicalQuery(q)
	want := "a=x%2By%2Fz&b=a%20b%2Ac~d"
	if got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestParseAuthorization(t *testing.T) {
	full := "ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=host;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce,Signature=ABCD"
	tests := []struct {
		name    string
		header  string
		wantErr bool
	}{
		{"valid", full, false},
		{"other algorithm", "ACS3-HMAC-SM3 Credential=AK,SignedHeaders=host,Signature=ab", true},
		{"empty", "", true},
		{"missing signature", "ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=host;x-acs-date", true},
		{"date not signed", "ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=host;x-acs-content-sha256;x-acs-signature-nonce,Signature=ab", true},
		{"garbage part", "ACS3-HMAC-SHA256 Credential", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseAuthorization(tc.header)
			if tc.wantErr {
				if !errors.Is(err, ErrBadAuthorization) {
					t.Fatalf("got err %v, want ErrBadAuthorization", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.AccessKeyID != "AK" || a.Signature != "abcd" || len(a.SignedHeaders) != 4 {
				t.Fatalf("got %+v", a)
			}
		})
	}
}
