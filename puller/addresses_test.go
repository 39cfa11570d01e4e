package puller_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/fcd-dev/fcd/instance"
	"github.com/fcd-dev/fcd/puller"
)

func TestAddressPolicyCheck(t *testing.T) {
	p := &puller.AddressPolicy{
		Refused:      puller.DefaultRefused,
		Allowed:      []netip.Prefix{netip.MustParsePrefix("127.0.1.0/24")},
		AllowedAddrs: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:5000"), netip.MustParseAddrPort("[::ffff:169.254.0.1]:80")},
		Hint:         "see -x",
	}
	for _, tc := range []struct {
		addr    string
		refused string // the network named, "" if allowed
	}{
		{"127.0.0.1:80", "127.0.0.0/8"},
		{"127.255.0.9:5000", "127.0.0.0/8"},
		{"[::1]:80", "::1/128"},
		{"169.254.169.254:80", "169.254.0.0/16"},
		{"[fe80::1%eth0]:80", "fe80::/10"},
		{"[fe80::1]:80", "fe80::/10"},
		{"0.0.0.0:80", "0.0.0.0/8"},
		{"[::]:80", "::/128"},
		{"224.0.0.1:80", "224.0.0.0/4"},
		{"[ff02::1]:80", "ff00::/8"},
		// IPv4-mapped IPv6 forms are the IPv4 addresses.
		{"[::ffff:127.0.0.1]:80", "127.0.0.0/8"},
		{"[::ffff:169.254.169.254]:80", "169.254.0.0/16"},
		{"[::ffff:0.0.0.0]:80", "0.0.0.0/8"},
		// Exceptions: an address at its port, in either form; a network.
		{"127.0.0.1:5000", ""},
		{"[::ffff:127.0.0.1]:5000", ""},
		{"127.0.0.1:5001", "127.0.0.0/8"},
		{"169.254.0.1:80", ""},
		{"169.254.0.1:81", "169.254.0.0/16"},
		{"127.0.1.7:22", ""},
		{"[::ffff:127.0.1.7]:22", ""},
		// Private and public networks.
		{"10.0.0.1:5000", ""},
		{"192.168.1.1:443", ""},
		{"[fd00::1]:443", ""},
		{"93.184.216.34:443", ""},
		{"[2001:db8::1]:443", ""},
	} {
		err := p.Check(netip.MustParseAddrPort(tc.addr))
		if tc.refused == "" {
			if err != nil {
				t.Errorf("%s: got %v, want it allowed", tc.addr, err)
			}
			continue
		}
		var ae *puller.AddressError
		if !errors.As(err, &ae) || !errors.Is(err, puller.ErrAddressRefused) || !errdefs.IsPermissionDenied(err) {
			t.Errorf("%s: got %v, want an *AddressError, ErrAddressRefused, PermissionDenied", tc.addr, err)
			continue
		}
		want := fmt.Sprintf("registry address refused: %s is in %s, see -x", tc.addr, tc.refused)
		if ae.Network.String() != tc.refused || err.Error() != want {
			t.Errorf("%s: got %q, want %q", tc.addr, err, want)
		}
	}

	// A mapped form in the list refuses both forms.
	mapped := &puller.AddressPolicy{Refused: []netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")}}
	for _, a := range []string{"10.1.2.3:80", "[::ffff:10.1.2.3]:80"} {
		if err := mapped.Check(netip.MustParseAddrPort(a)); !errors.Is(err, puller.ErrAddressRefused) {
			t.Errorf("refusing ::ffff:10.0.0.0/104: %s: got %v, want it refused", a, err)
		}
	}
	// No networks: nothing refused.
	if err := (&puller.AddressPolicy{}).Check(netip.MustParseAddrPort("127.0.0.1:80")); err != nil {
		t.Errorf("empty policy: got %v, want nil", err)
	}
}

// TestAddressPolicyTransport dials through the policy's transport: a
// refused address gets no connection, an allowed one answers, and a base
// transport that dials by itself is refused.
func TestAddressPolicyTransport(t *testing.T) {
	allowed, allowedHits := countingServer(t, "127.0.0.1:0")
	refused, refusedHits := countingServer(t, "127.0.0.1:0")
	p := &puller.AddressPolicy{Refused: puller.DefaultRefused, AllowedAddrs: []netip.AddrPort{netip.MustParseAddrPort(allowed)}}
	tr, err := p.Transport(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: tr}
	resp, err := c.Get("http://" + allowed + "/")
	if err != nil {
		t.Fatalf("allowed %s: %v", allowed, err)
	}
	resp.Body.Close()
	if _, err := c.Get("http://" + refused + "/"); !errors.Is(err, puller.ErrAddressRefused) {
		t.Errorf("refused %s: got %v, want ErrAddressRefused", refused, err)
	}
	if allowedHits.Load() != 1 || refusedHits.Load() != 0 {
		t.Errorf("got %d requests at the allowed server and %d at the refused one, want 1 and 0", allowedHits.Load(), refusedHits.Load())
	}

	own := &http.Transport{DialTLSContext: func(context.Context, string, string) (net.Conn, error) { return nil, errors.New("unused") }}
	if _, err := p.Transport(own); err == nil {
		t.Error("Transport of a transport with DialTLSContext: got nil error, want it refused")
	}
}

// countingServer serves 404 on addr and counts its requests.
func countingServer(t *testing.T, addr string) (string, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.NotFound(w, r)
	}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s.Listener.Close()
	s.Listener = ln
	s.Start()
	t.Cleanup(s.Close)
	return ln.Addr().String(), &n
}

// TestPrepareAddressPolicy pulls through a puller that refuses loopback
// but for its registry's address: the image pulls, and every way a
// registry can send fcd elsewhere on loopback is refused before the
// other service gets a request: naming it as the registry, pointing the
// token realm at it, redirecting a blob to it, and a hosts directory's
// TLS settings (which give the host a transport of its own).
func TestPrepareAddressPolicy(t *testing.T) {
	c := setup(t)
	// The forbidden service: anything on the host's loopback.
	forbidden, hits := countingServer(t, "127.0.0.2:0")

	var mode atomic.Value // "", "realm" or "redirect"
	mode.Store("")
	reg := newRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch m := mode.Load().(string); {
			case m == "realm":
				w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/token",service="x"`, forbidden))
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			case m == "redirect" && strings.Contains(r.URL.Path, "/blobs/"):
				http.Redirect(w, r, "http://"+forbidden+r.URL.Path, http.StatusTemporaryRedirect)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	push(t, reg+"/test/guarded:v1", randomImage(t, 1024, 1))
	push(t, reg+"/test/redirected:v1", randomImage(t, 1024, 1))

	policy := &puller.AddressPolicy{
		Refused:      puller.DefaultRefused,
		AllowedAddrs: []netip.AddrPort{netip.MustParseAddrPort(reg)},
		Hint:         "test policy",
	}
	p := newPuller(t, c, puller.Options{Addresses: policy})
	ctx := context.Background()
	allowed := func(what, ref string, p *puller.Puller) {
		t.Helper()
		img, err := p.Prepare(ctx, ref, instance.ImageOptions{Key: t.Name() + "-" + what})
		if err != nil {
			t.Fatalf("%s: Prepare %s from the allowed registry: %v", what, ref, err)
		}
		if err := img.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
	allowed("allowed", reg+"/test/guarded:v1", p)

	refused := func(what, ref string, p *puller.Puller) {
		t.Helper()
		_, err := p.Prepare(ctx, ref, instance.ImageOptions{Key: t.Name() + "-" + what})
		if !errors.Is(err, puller.ErrAddressRefused) || !strings.Contains(err.Error(), forbidden+" is in 127.0.0.0/8, test policy") {
			t.Errorf("%s: got %v, want ErrAddressRefused naming %s", what, err, forbidden)
		}
	}
	refused("registry", forbidden+"/test/guarded:v1", p)
	mode.Store("realm")
	refused("realm", reg+"/test/guarded:v2", p)
	mode.Store("redirect")
	refused("redirect", reg+"/test/redirected:v1", p)
	mode.Store("")

	// A hosts.toml with TLS settings gets its host a transport of its
	// own (plain HTTP is tried after TLS fails).
	dir := t.TempDir()
	for _, host := range []string{reg, forbidden} {
		hostDir := filepath.Join(dir, host)
		if err := os.MkdirAll(hostDir, 0o755); err != nil {
			t.Fatal(err)
		}
		toml := fmt.Sprintf("server = \"http://%s\"\n\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n  skip_verify = true\n", host, host)
		if err := os.WriteFile(filepath.Join(hostDir, "hosts.toml"), []byte(toml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hp := newPuller(t, c, puller.Options{Addresses: policy, HostsDir: dir})
	allowed("hosts dir allowed", reg+"/test/guarded:v1", hp)
	refused("hosts dir", forbidden+"/test/guarded:v1", hp)

	if n := hits.Load(); n != 0 {
		t.Errorf("the forbidden service got %d requests, want none", n)
	}
}
