package remote

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/containerd/containerd/remotes/docker"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/fcd-dev/fcd/puller"
)

// TestRefusedAddressFailsAtOnce redirects a blob GET to an address the
// client's puller.AddressPolicy refuses: the read fails at once with the
// refusal, not after retrying as if the registry were down, and the
// refused service gets no request.
func TestRefusedAddressFailsAtOnce(t *testing.T) {
	var hits atomic.Int32
	forbidden := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	forbidden.Listener.Close()
	forbidden.Listener = ln
	forbidden.Start()
	t.Cleanup(forbidden.Close)
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, forbidden.URL+"/signed", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")

	policy := &puller.AddressPolicy{Refused: puller.DefaultRefused, AllowedAddrs: []netip.AddrPort{netip.MustParseAddrPort(host)}}
	tr, err := policy.Transport(nil)
	if err != nil {
		t.Fatal(err)
	}
	hosts := func(string) ([]docker.RegistryHost, error) {
		return []docker.RegistryHost{{
			Client: &http.Client{Transport: tr}, Host: host, Scheme: "http", Path: "/v2",
			Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve,
		}}, nil
	}
	f := New(testOptions())
	t.Cleanup(func() { f.Close() })
	desc := ocispec.Descriptor{Digest: digest.FromString("blob"), Size: 100}
	b, err := f.Blob(host+"/fn/image:tag", desc, hosts, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.ReadRange(context.Background(), 0, 10, OnDemand)
	if !errors.Is(err, puller.ErrAddressRefused) {
		t.Fatalf("read through a refused redirect: got %v, want ErrAddressRefused", err)
	}
	if st := b.Stats(); st.Retries != 0 {
		t.Errorf("got %d retries, want none", st.Retries)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the refused service got %d requests, want none", n)
	}
}
