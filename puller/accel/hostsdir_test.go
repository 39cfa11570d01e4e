package accel

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/fcd-dev/fcd/puller"
)

// registryName is the name tests give a registry that is not on
// loopback to the converter (docker.MatchLocalhost holds all of 127.0.0.0/8
// and localhost local); hostsConverter's dialer takes it to a registry
// on loopback, so that no traffic leaves the host.
const registryName = "registry.test:5000"

// hostsDir writes a hosts directory with hosts.toml for each host.
func hostsDir(t *testing.T, tomls map[string]string) string {
	dir := t.TempDir()
	for host, toml := range tomls {
		d := filepath.Join(dir, host)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "hosts.toml"), []byte(toml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// hostsConverter returns a Converter that reaches registries as dir says,
// the way fcd builds it, and connects to registryName at to ("" for
// none); it connects nowhere else but to addresses on loopback.
func hostsConverter(t *testing.T, dir, to string) *Converter {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == registryName && to != "" {
			addr = to
		}
		if ip, err := netip.ParseAddrPort(addr); err != nil || !ip.Addr().IsLoopback() {
			return nil, fmt.Errorf("test dialer: %s is not on loopback", addr)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	rt, err := puller.NewRegistryTransport(dir, base, nil, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return NewConverter(Options{Transport: rt, PlainHTTP: rt.PlainHTTP, TempDir: t.TempDir()})
}

// TestHostsDirPlainHTTP: a registry off loopback that the hosts directory
// gives as http:// is converted in plain HTTP, with or without TLS
// settings for it (containerd then tries HTTPS first); without the entry,
// plain HTTP to it is refused with ErrPlainHTTP, as without a hosts
// directory.
func TestHostsDirPlainHTTP(t *testing.T) {
	addr := testRegistry(t)
	push(t, addr+"/test/app:v1", generatedImage(t, compression.GZip, types.DockerLayer))
	const host = registryName
	ref := host + "/test/app:v1"

	for _, tc := range []struct {
		name string
		toml string
	}{
		{"http", fmt.Sprintf("server = %q\n", "http://"+host)},
		{"http with skip_verify", fmt.Sprintf("server = %q\n[host.%q]\n  skip_verify = true\n", "http://"+host, "http://"+host)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := hostsConverter(t, hostsDir(t, map[string]string{host: tc.toml}), addr)
			res, err := c.Convert(context.Background(), Request{Ref: ref, Mode: ModeIndexOnly})
			if err != nil {
				t.Fatalf("Convert with the hosts directory giving http://%s: %v", host, err)
			}
			if res.Target != ref+TagSuffix {
				t.Errorf("got target %s, want %s", res.Target, ref+TagSuffix)
			}
		})
	}

	for name, dir := range map[string]string{
		"no hosts directory": "",
		"no entry":           hostsDir(t, map[string]string{"other.test:5000": "server = \"http://other.test:5000\"\n"}),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := hostsConverter(t, dir, addr).Resolve(context.Background(), ref)
			if !errors.Is(err, ErrPlainHTTP) {
				t.Errorf("Resolve: got %v, want ErrPlainHTTP", err)
			}
		})
	}
}

// TestHostsDirHeader: the headers a hosts directory gives for a registry
// go with every request to it.
func TestHostsDirHeader(t *testing.T) {
	addr, reqs := loggedRegistry(t, func(r *http.Request) string {
		return r.Method + " " + r.URL.Path + ": " + r.Header.Get("X-Fcd-Test")
	})
	push(t, addr+"/test/app:v1", generatedImage(t, compression.GZip, types.DockerLayer))
	reqs.take()

	toml := fmt.Sprintf("server = %q\n[header]\n  x-fcd-test = \"yes\"\n", "http://"+registryName)
	c := hostsConverter(t, hostsDir(t, map[string]string{registryName: toml}), addr)
	if _, err := c.Convert(context.Background(), Request{Ref: registryName + "/test/app:v1", Mode: ModeIndexOnly}); err != nil {
		t.Fatalf("Convert: %v", err)
	}
	got := reqs.take()
	if len(got) == 0 {
		t.Fatal("the registry got no request")
	}
	for _, r := range got {
		if !strings.HasSuffix(r, ": yes") {
			t.Errorf("got request %s, want X-Fcd-Test: yes", r)
		}
	}
}

// TestHostsDirCA: a registry whose CA only the hosts directory gives is
// converted in HTTPS; without the CA the conversion fails to verify the
// certificate, and a registry the directory gives as https:// is never
// tried in plain HTTP, even on loopback.
func TestHostsDirCA(t *testing.T) {
	srv := httptest.NewTLSServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	ref := host + "/test/app:v1"
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, generatedImage(t, compression.GZip, types.DockerLayer), remote.WithTransport(srv.Client().Transport)); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	server := fmt.Sprintf("server = %q\n", "https://"+host)

	t.Run("CA in the hosts directory", func(t *testing.T) {
		c := hostsConverter(t, hostsDir(t, map[string]string{host: server + fmt.Sprintf("[host.%q]\n  ca = %q\n", "https://"+host, ca)}), "")
		if _, err := c.Convert(context.Background(), Request{Ref: ref, Mode: ModeIndexOnly}); err != nil {
			t.Fatalf("Convert: %v", err)
		}
	})
	for _, tc := range []struct {
		name string
		dir  string
		// plain: a plain-HTTP request is refused too, since the hosts
		// directory gives the server as https://.
		plain bool
	}{
		{"no entry", hostsDir(t, nil), false},
		{"entry without the CA", hostsDir(t, map[string]string{host: server}), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := hostsConverter(t, tc.dir, "").Resolve(context.Background(), ref)
			var unknown x509.UnknownAuthorityError
			if !errors.As(err, &unknown) {
				t.Errorf("Resolve: got %v, want an x509.UnknownAuthorityError", err)
			}
			if got := errors.Is(err, ErrPlainHTTP); got != tc.plain {
				t.Errorf("Resolve: got %v, want ErrPlainHTTP %v", err, tc.plain)
			}
		})
	}
}

// TestHostsDirRefused: a hosts directory entry the converter cannot honour
// fails the conversion with puller.ErrHostsDir and says why.
func TestHostsDirRefused(t *testing.T) {
	const host = registryName
	for _, tc := range []struct {
		name, toml, why string
	}{
		{"server on another host", "server = \"https://mirror.test:5000\"\n", "another host"},
		{"server under a path", "server = \"https://registry.test:5000/team\"\n", "under /team/v2"},
		{"no push capability", "server = \"https://registry.test:5000\"\ncapabilities = [\"pull\", \"resolve\"]\n", "no host push capability"},
		{"CA that cannot be read", "server = \"https://registry.test:5000\"\nca = \"/nonexistent/ca.crt\"\n", "/nonexistent/ca.crt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := hostsConverter(t, hostsDir(t, map[string]string{host: tc.toml}), "")
			_, err := c.Convert(context.Background(), Request{Ref: host + "/test/app:v1", Mode: ModeFull})
			if !errors.Is(err, puller.ErrHostsDir) || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("Convert: got %v, want puller.ErrHostsDir saying %q", err, tc.why)
			}
		})
	}
}
