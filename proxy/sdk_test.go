package proxy

import (
	"errors"
	"net/http"
	"testing"

	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	fc "github.com/alibabacloud-go/fc-20230330/v4/client"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/fcd-dev/fcd/store"
)

// ownHTTP gives an SDK client an http.Client of its own (the SDK's shared
// one is rewritten per call without a lock).
type ownHTTP struct{ c *http.Client }

func (h ownHTTP) Call(req *http.Request, tr *http.Transport) (*http.Response, error) {
	if h.c.Transport == nil {
		h.c.Transport = tr
	}
	return h.c.Do(req)
}

// sdkClient is the official SDK pointed at a test proxy at addr.
func sdkClient(t *testing.T, addr string) *fc.Client {
	t.Helper()
	c, err := fc.NewClient(&openapiutil.Config{
		HttpClient:      ownHTTP{&http.Client{}},
		AccessKeyId:     dara.String(testKeyID),
		AccessKeySecret: dara.String(testSecret),
		Endpoint:        dara.String(addr),
		Protocol:        dara.String("http"),
		RegionId:        dara.String("local"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sdkCode returns the FC code and HTTP status of an SDK error.
func sdkCode(err error) (string, int) {
	var se *tea.SDKError
	if errors.As(err, &se) {
		return dara.StringValue(se.Code), dara.IntValue(se.StatusCode)
	}
	return "", 0
}

// newStore opens a fresh store for one test.
func newStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir()+"/fcd.db", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
