package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/fcd-dev/fcd/api"
)

// client calls fcd's API with V3-signed requests.
type client struct {
	endpoint string // host:port
	creds    api.Credentials
	http     *http.Client
}

// apiError is an FC error response.
type apiError struct {
	Status    int
	Code      string `json:"Code"`
	Message   string `json:"Message"`
	RequestID string `json:"RequestId"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s (HTTP %d): %s [request id %s]", e.Code, e.Status, e.Message, e.RequestID)
}

// do sends a signed request and returns the response with its body read,
// or an *apiError for a non-2xx answer.
func (c *client) do(ctx context.Context, method, path string, query url.Values, body []byte, header http.Header) (*http.Response, []byte, error) {
	u := url.URL{Scheme: "http", Host: c.endpoint, Path: path, RawQuery: encodeQuery(query)}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	c.sign(req, path, query, body)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp, nil, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		e := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Code == "" {
			e.Code, e.Message = http.StatusText(resp.StatusCode), strings.TrimSpace(string(data))
		}
		if e.RequestID == "" {
			e.RequestID = resp.Header.Get("x-fc-request-id")
		}
		return resp, data, e
	}
	return resp, data, nil
}

func (c *client) sign(req *http.Request, path string, query url.Values, body []byte) {
	var nonce [16]byte
	rand.Read(nonce[:])
	req.Header.Set(api.HeaderDate, time.Now().UTC().Format(api.DateFormat))
	req.Header.Set(api.HeaderNonce, hex.EncodeToString(nonce[:]))
	req.Header.Set(api.HeaderContentSHA256, api.HashPayload(body))
	req.Header.Set("x-acs-version", api.Version)
	names := []string{"host"}
	for k := range req.Header {
		names = append(names, strings.ToLower(k))
	}
	signed := api.SignedHeaderNames(names)
	r := api.Request{
		Method: req.Method,
		Path:   path,
		Query:  query,
		Header: func(name string) []string {
			if name == "host" {
				return []string{req.URL.Host}
			}
			return req.Header.Values(name)
		},
		PayloadHash: api.HashPayload(body),
	}
	sig := api.Sign(c.creds.AccessKeySecret, api.CanonicalRequest(r, signed))
	req.Header.Set(api.HeaderAuthorization, api.AuthorizationHeader(c.creds.AccessKeyID, signed, sig))
}

func encodeQuery(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		for _, v := range q[k] {
			parts = append(parts, url.QueryEscape(k)+"="+url.QueryEscape(v))
		}
	}
	return strings.Join(parts, "&")
}
