package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

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
	u := url.URL{Scheme: "http", Host: c.endpoint, Path: path, RawQuery: query.Encode()}
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
	req.Header.Set("x-acs-version", api.Version)
	if err := api.SignRequest(req, body, c.creds.AccessKeyID, c.creds.AccessKeySecret); err != nil {
		return nil, nil, err
	}
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
