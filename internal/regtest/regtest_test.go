package regtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func blobBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

func get(t *testing.T, c *http.Client, url, rng, token string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestRanges(t *testing.T) {
	r := New(t)
	data := blobBytes(100 << 10)
	d := r.AddBlob(data).Digest
	url := r.URL + "/v2/repo/blobs/" + d.String()
	c := r.srv.Client()
	for _, tc := range []struct {
		name   string
		faults Faults
		rng    string
		status int
		want   []byte
	}{
		{"single range", Faults{}, "bytes=10-19", http.StatusPartialContent, data[10:20]},
		{"whole", Faults{}, "", http.StatusOK, data},
		{"multi-range served", Faults{}, "bytes=0-1,5-6", http.StatusPartialContent, nil},
		{"multi-range refused", Faults{RefuseMultiRange: true}, "bytes=0-1,5-6", http.StatusBadRequest, nil},
		{"single range allowed when multi refused", Faults{RefuseMultiRange: true}, "bytes=3-4", http.StatusPartialContent, data[3:5]},
		{"range ignored", Faults{IgnoreRange: true}, "bytes=10-19", http.StatusOK, data},
		{"injected failure", Faults{Fails: 1}, "bytes=0-0", http.StatusServiceUnavailable, nil},
		{"down", Faults{Down: true}, "bytes=0-0", http.StatusServiceUnavailable, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.SetFaults(tc.faults)
			resp, b := get(t, c, url, tc.rng, "")
			if resp.StatusCode != tc.status {
				t.Fatalf("got status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.want != nil && !bytes.Equal(b, tc.want) {
				t.Fatalf("got %d bytes, want %d", len(b), len(tc.want))
			}
		})
	}
	r.SetFaults(Faults{Fails: 1})
	get(t, c, url, "bytes=0-0", "")
	if resp, _ := get(t, c, url, "bytes=0-0", ""); resp.StatusCode != http.StatusPartialContent {
		t.Fatalf("after the one injected failure: got %d, want 206", resp.StatusCode)
	}
	reqs := r.BlobRequests(d)
	if last := reqs[len(reqs)-1]; last.Range != "bytes=0-0" || last.Status != http.StatusPartialContent || last.Bytes != 1 {
		t.Fatalf("last logged request: got %+v", last)
	}
}

func TestRedirect(t *testing.T) {
	r := New(t)
	data := blobBytes(10 << 10)
	d := r.AddBlob(data).Digest
	r.SetFaults(Faults{Redirect: true})
	resp, b := get(t, r.srv.Client(), r.URL+"/v2/repo/blobs/"+d.String(), "bytes=5-9", "")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, data[5:10]) {
		t.Fatalf("through the redirect: got %d, %d bytes", resp.StatusCode, len(b))
	}
	if !strings.HasPrefix(resp.Request.URL.Path, "/signed/") {
		t.Fatalf("got final URL %s, want a signed URL", resp.Request.URL)
	}
	r.ExpireSignedURLs()
	if resp, _ := get(t, r.srv.Client(), resp.Request.URL.String(), "bytes=5-9", ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("expired signed URL: got %d, want 403", resp.StatusCode)
	}
}

func TestAuth(t *testing.T) {
	r := New(t)
	d := r.AddBlob(blobBytes(1000)).Digest
	url := r.URL + "/v2/some/repo/blobs/" + d.String()
	r.SetCredentials("u", "p1")
	r.SetFaults(Faults{Auth: true})
	c := r.srv.Client()
	resp, _ := get(t, c, url, "", "")
	ch := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(ch, `scope="repository:some/repo:pull"`) {
		t.Fatalf("without a token: got %d %q, want 401 with a challenge", resp.StatusCode, ch)
	}
	token := func(user, pass string) (string, int) {
		req, _ := http.NewRequest(http.MethodGet, r.URL+"/token?service=regtest", nil)
		req.SetBasicAuth(user, pass)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v struct{ Token string }
		json.NewDecoder(resp.Body).Decode(&v)
		return v.Token, resp.StatusCode
	}
	if _, status := token("u", "wrong"); status != http.StatusUnauthorized {
		t.Fatalf("bad login: got %d, want 401", status)
	}
	tok, _ := token("u", "p1")
	if resp, _ := get(t, c, url, "", tok); resp.StatusCode != http.StatusOK {
		t.Fatalf("with a token: got %d, want 200", resp.StatusCode)
	}
	r.SetCredentials("u", "p2")
	if _, status := token("u", "p1"); status != http.StatusUnauthorized {
		t.Fatalf("rotated login: got %d, want 401", status)
	}
	r.ExpireTokens()
	resp, _ = get(t, c, url, "", tok)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Fatalf("expired token: got %d %q, want 401 invalid_token", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	r.UpdateFaults(func(f *Faults) { f.ExpiredStatus = http.StatusForbidden })
	if resp, _ := get(t, c, url, "", tok); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("expired token, 403 mode: got %d, want 403", resp.StatusCode)
	}
}

func TestStallAndDrop(t *testing.T) {
	r := New(t)
	data := blobBytes(256 << 10)
	d := r.AddBlob(data).Digest
	url := r.URL + "/v2/repo/blobs/" + d.String()

	r.SetFaults(Faults{DropAfter: 1000, Drops: 1})
	resp, err := r.srv.Client().Get(url)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(b) != 1000 {
		t.Fatalf("dropped body: got %d bytes, %v; want 1000, unexpected EOF", len(b), err)
	}

	r.SetFaults(Faults{StallAfter: 2000, Stalls: 1})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err = r.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b = make([]byte, 2000)
	if _, err := io.ReadFull(resp.Body, b); err != nil {
		t.Fatal(err)
	}
	// The stalled body sends nothing more: a bounded read times out, and
	// once the client gives up the handler returns.
	got := make(chan error, 1)
	go func() {
		_, err := resp.Body.Read(make([]byte, 1))
		got <- err
	}()
	time.AfterFunc(50*time.Millisecond, cancel)
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("read of a stalled body: got %v, want context.Canceled", err)
	}
	resp.Body.Close()
	if resp, b := get(t, r.srv.Client(), url, "", ""); resp.StatusCode != http.StatusOK || len(b) != len(data) {
		t.Fatalf("after the stall: got %d, %d bytes", resp.StatusCode, len(b))
	}
}

// TestPushPull checks the wrapped registry handler with go-containerregistry's client.
func TestPushPull(t *testing.T) {
	r := New(t)
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(r.Ref("lib/img:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if gd, _ := got.Digest(); gd != want {
		t.Fatalf("got %s, want %s", gd, want)
	}
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	resp, b := get(t, r.srv.Client(), fmt.Sprintf("%s/v2/lib/img/blobs/%s", r.URL, ld), "bytes=0-9", "")
	if resp.StatusCode != http.StatusPartialContent || len(b) != 10 {
		t.Fatalf("pushed layer range: got %d, %d bytes", resp.StatusCode, len(b))
	}
}
