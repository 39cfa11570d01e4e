package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// paging names a list API's page parameters: FC's limit and nextToken,
// or Limit and NextToken in the tag APIs.
type paging struct{ limit, next string }

var (
	fcPaging  = paging{"limit", "nextToken"}
	tagPaging = paging{"Limit", "NextToken"}
)

// pageSize is how many items fcctl asks for per page.
const pageSize = 100

// listPages fetches the pages of the list API at path, with the query q,
// and returns the items each page holds under key, up to max of them (0:
// all).
func listPages[T any](ctx context.Context, c *client, path string, q url.Values, p paging, key string, max int) ([]T, error) {
	all := []T{}
	for {
		n := pageSize
		if max > 0 {
			n = min(n, max-len(all))
		}
		q.Set(p.limit, strconv.Itoa(n))
		_, data, err := c.do(ctx, http.MethodGet, path, q, nil, nil)
		if err != nil {
			return nil, err
		}
		var page map[string]json.RawMessage
		if err := json.Unmarshal(data, &page); err != nil {
			return nil, fmt.Errorf("decode response: %w", err)
		}
		var items []T
		var next string
		if err := unmarshalField(page, key, &items); err != nil {
			return nil, err
		}
		if err := unmarshalField(page, p.next, &next); err != nil {
			return nil, err
		}
		all = append(all, items...)
		if next == "" || (max > 0 && len(all) >= max) {
			return all, nil
		}
		q.Set(p.next, next)
	}
}

// unmarshalField decodes page[key] into v when the page has it.
func unmarshalField(page map[string]json.RawMessage, key string, v any) error {
	raw, ok := page[key]
	if !ok {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decode response's %s: %w", key, err)
	}
	return nil
}
