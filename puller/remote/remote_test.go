package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/containerd/remotes/docker"
	"github.com/fcd-dev/fcd/cache"
	"github.com/fcd-dev/fcd/internal/regtest"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// testOptions retry fast, so tests of failures end quickly.
func testOptions() Options {
	return Options{
		RetryTimeout:     2 * time.Second,
		InitialBackoff:   time.Millisecond,
		MaxBackoff:       20 * time.Millisecond,
		StallTimeout:     200 * time.Millisecond,
		BreakerThreshold: 50,
		BreakerCooldown:  10 * time.Millisecond,
	}
}

func blobData(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// login is a rotating credential: the registry accepts only the current
// one, and the credentials source hands out no other (as an STS hands
// out keys that are valid when it does).
type login struct {
	r     *regtest.Registry
	calls atomic.Int64

	mu sync.Mutex
	n  int
}

func (l *login) rotate() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	l.r.SetCredentials("fc", fmt.Sprint("secret-", l.n))
}

func (l *login) creds(string) (string, string, error) {
	l.calls.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	return "fc", fmt.Sprint("secret-", l.n), nil
}

type fixture struct {
	r     *regtest.Registry
	f     *Fetcher
	b     *Blob
	data  []byte
	desc  ocispec.Descriptor
	login *login
}

func newFixture(t testing.TB, size int, opts Options) *fixture {
	t.Helper()
	r := regtest.New(t)
	data := blobData(size, 7)
	desc := r.AddBlob(data)
	l := &login{r: r}
	l.rotate()
	f := New(opts)
	t.Cleanup(func() { f.Close() })
	b, err := f.Blob(r.Ref("fn/image:tag"), desc, r.Hosts(), l.creds)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{r: r, f: f, b: b, data: data, desc: desc, login: l}
}

// checkReads reads random ranges (and chunks with digests) and compares
// them with the blob.
func (x *fixture) checkReads(t *testing.T, reads int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 2))
	for i := range reads {
		off := rng.Int64N(int64(len(x.data)))
		n := rng.Int64N(int64(len(x.data))-off) + 1
		var got []byte
		var err error
		if i%2 == 0 {
			got, err = x.b.ReadRange(context.Background(), off, n, Priority(i%3))
		} else {
			got, err = x.b.ReadChunk(context.Background(), off, n, digest.FromBytes(x.data[off:off+n]), Priority(i%3))
		}
		if err != nil {
			t.Fatalf("read %d-%d: %v", off, off+n-1, err)
		}
		if !bytes.Equal(got, x.data[off:off+n]) {
			t.Fatalf("read %d-%d: wrong bytes", off, off+n-1)
		}
	}
}

func TestMisbehavingRegistry(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults regtest.Faults
		// mid runs between two rounds of reads (token expiry and the like).
		mid   func(x *fixture)
		check func(t *testing.T, x *fixture, st Stats)
	}{
		{name: "well behaved"},
		{name: "multi-range refused", faults: regtest.Faults{RefuseMultiRange: true}},
		{
			name: "200 instead of 206", faults: regtest.Faults{IgnoreRange: true},
			check: func(t *testing.T, x *fixture, st Stats) {
				if st.WholeBlob == 0 {
					t.Error("got no whole-blob answers counted")
				}
			},
		},
		{
			name: "redirect to expiring URLs", faults: regtest.Faults{Redirect: true, SignedURLTTL: time.Hour},
			mid: func(x *fixture) { x.r.ExpireSignedURLs() },
			check: func(t *testing.T, x *fixture, st Stats) {
				var blobGETs, signed int
				for _, q := range x.r.Requests() {
					switch {
					case strings.HasPrefix(q.Path, "/v2/") && q.Status == http.StatusTemporaryRedirect:
						blobGETs++
					case strings.HasPrefix(q.Path, "/signed/"):
						signed++
					}
				}
				if blobGETs == 0 || signed != blobGETs {
					t.Errorf("got %d redirects and %d signed GETs, want each redirect followed once", blobGETs, signed)
				}
			},
		},
		{
			name: "token expires, 401", faults: regtest.Faults{Auth: true},
			mid: func(x *fixture) { x.login.rotate(); x.r.ExpireTokens() },
			check: func(t *testing.T, x *fixture, st Stats) {
				if st.Reauths < 2 || x.login.calls.Load() < 2 {
					t.Errorf("got %d re-authentications, %d credential calls; want 2 or more of each", st.Reauths, x.login.calls.Load())
				}
			},
		},
		{
			name: "token expires, 403", faults: regtest.Faults{Auth: true, ExpiredStatus: http.StatusForbidden},
			mid: func(x *fixture) { x.login.rotate(); x.r.ExpireTokens() },
			check: func(t *testing.T, x *fixture, st Stats) {
				if st.Reauths < 2 {
					t.Errorf("got %d re-authentications, want 2 or more", st.Reauths)
				}
			},
		},
		{
			name: "auth and redirect", faults: regtest.Faults{Auth: true, ExpiredStatus: http.StatusForbidden, Redirect: true},
			mid: func(x *fixture) { x.r.ExpireTokens(); x.r.ExpireSignedURLs() },
		},
		{name: "stalls", faults: regtest.Faults{StallAfter: 3000, Stalls: 3}, check: wantRetries},
		{name: "dropped connections", faults: regtest.Faults{DropAfter: 5000, Drops: 4}, check: wantRetries},
		{name: "503s", faults: regtest.Faults{Fails: 5}, check: wantRetries},
		{name: "429s", faults: regtest.Faults{Fails: 2, FailStatus: http.StatusTooManyRequests}, check: wantRetries},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := newFixture(t, 3<<20, testOptions())
			x.r.SetFaults(tc.faults)
			x.checkReads(t, 10, 1)
			if tc.mid != nil {
				tc.mid(x)
			}
			x.checkReads(t, 10, 2)
			x.r.Close() // waits for handlers, so the log is complete
			for _, q := range x.r.Requests() {
				if strings.Contains(q.Range, ",") || (strings.Contains(q.Path, "/blobs/") || strings.HasPrefix(q.Path, "/signed/")) && q.Range == "" {
					t.Fatalf("got request %+v, want single ranges only", q)
				}
			}
			st := x.b.Stats()
			if st.NetworkBytes < 1 || st.Requests < 1 {
				t.Fatalf("got stats %+v", st)
			}
			if tc.check != nil {
				tc.check(t, x, st)
			}
		})
	}
}

func wantRetries(t *testing.T, x *fixture, st Stats) {
	if st.Retries == 0 {
		t.Errorf("got no retries, want some")
	}
}

func TestRegistryDown(t *testing.T) {
	opts := testOptions()
	opts.RetryTimeout = 300 * time.Millisecond
	opts.BreakerThreshold = 3
	opts.BreakerCooldown = 50 * time.Millisecond
	opts.Streams = 4
	x := newFixture(t, 1<<20, opts)
	x.r.SetFaults(regtest.Faults{Down: true})
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = x.b.ReadRange(context.Background(), int64(i)*1000, 100, OnDemand)
		})
	}
	wg.Wait()
	for i, err := range errs {
		var fe *FetchError
		if !errors.Is(err, ErrUnavailable) || !errors.As(err, &fe) {
			t.Fatalf("read %d: got %v, want ErrUnavailable in a FetchError", i, err)
		}
		msg := err.Error()
		for _, want := range []string{x.r.Host, "fn/image", x.desc.Digest.String(), fmt.Sprintf("bytes %d-%d", i*1000, i*1000+99)} {
			if !strings.Contains(msg, want) {
				t.Fatalf("error %q does not name %q", msg, want)
			}
		}
	}
	// Without the breaker each of the 8 reads would retry every few
	// milliseconds for 300 ms; with it, the registry sees the threshold,
	// the requests already in flight and a probe per cooldown.
	if n := len(x.r.Requests()); n > opts.BreakerThreshold+opts.Streams+4 {
		t.Fatalf("a down registry got %d requests, want at most %d", n, opts.BreakerThreshold+opts.Streams+4)
	}
	// It comes back: the next read succeeds.
	x.r.SetFaults(regtest.Faults{})
	x.checkReads(t, 3, 3)
}

func TestFailsFast(t *testing.T) {
	x := newFixture(t, 1<<20, testOptions())
	for _, tc := range []struct {
		name   string
		faults regtest.Faults
		want   error
	}{
		{"404", regtest.Faults{Fails: -1, FailStatus: http.StatusNotFound}, ErrBadResponse},
		{"bad credentials", regtest.Faults{Auth: true}, ErrUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x.r.SetFaults(tc.faults)
			if tc.faults.Auth {
				x.r.SetCredentials("fc", "something the callback does not know")
			}
			if _, err := x.b.ReadRange(context.Background(), 0, 10, OnDemand); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := x.b.ReadRange(context.Background(), int64(len(x.data))-5, 10, OnDemand); err == nil {
		t.Fatal("read past the end: got nil error, want one")
	}
}

func TestVerifiedCache(t *testing.T) {
	dir := t.TempDir()
	c, err := cache.Open(dir, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	opts := testOptions()
	opts.Cache = c
	x := newFixture(t, 2<<20, opts)
	ctx := context.Background()
	chunk := x.data[512<<10 : 1<<20]
	want := digest.FromBytes(chunk)

	if _, err := x.b.ReadChunk(ctx, 512<<10, 512<<10, digest.FromString("other"), OnDemand); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("wrong digest: got %v, want ErrDigestMismatch", err)
	}
	if c.Has(digest.FromString("other")) {
		t.Fatal("a chunk that failed verification was cached")
	}
	got, err := x.b.ReadChunk(ctx, 512<<10, 512<<10, want, OnDemand)
	if err != nil || !bytes.Equal(got, chunk) {
		t.Fatalf("got %d bytes, %v", len(got), err)
	}
	if !c.Has(want) {
		t.Fatal("verified chunk not cached")
	}
	// Served from the cache, even through another Blob of the same layer.
	b2, err := x.f.Blob(x.r.Ref("other/image"), x.desc, x.r.Hosts(), x.login.creds)
	if err != nil {
		t.Fatal(err)
	}
	got, err = b2.ReadChunk(ctx, 512<<10, 512<<10, want, OnDemand)
	if err != nil || !bytes.Equal(got, chunk) {
		t.Fatalf("from cache: got %d bytes, %v", len(got), err)
	}
	if st := b2.Stats(); st.CacheBytes != int64(len(chunk)) || st.NetworkBytes != 0 || st.Requests != 0 {
		t.Fatalf("from cache: got stats %+v", st)
	}
	// A corrupt entry is dropped and fetched again.
	p := filepath.Join(dir, "sha256", want.Encoded())
	os.Chmod(p, 0o644)
	if err := os.WriteFile(p, bytes.Repeat([]byte{1}, len(chunk)), 0o644); err != nil {
		t.Fatal(err)
	}
	before := x.b.Stats().Requests
	got, err = x.b.ReadChunk(ctx, 512<<10, 512<<10, want, OnDemand)
	if err != nil || !bytes.Equal(got, chunk) {
		t.Fatalf("after corruption: got %d bytes, %v", len(got), err)
	}
	if n := x.b.Stats().Requests - before; n != 1 {
		t.Fatalf("after corruption: got %d requests, want 1", n)
	}
}

// TestHeldChunks: with HoldBytes, verified chunks are served from memory
// and written to the cache only once they leave it, or at Close.
func TestHeldChunks(t *testing.T) {
	c, err := cache.Open(t.TempDir(), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	opts := testOptions()
	opts.Cache, opts.HoldBytes = c, 1<<20
	x := newFixture(t, 2<<20, opts)
	ctx := context.Background()
	const n = 512 << 10
	var ds []digest.Digest
	for i := range 3 {
		chunk := x.data[i*n : (i+1)*n]
		ds = append(ds, digest.FromBytes(chunk))
		for range 2 {
			got, err := x.b.ReadChunk(ctx, int64(i*n), n, ds[i], OnDemand)
			if err != nil || !bytes.Equal(got, chunk) {
				t.Fatalf("chunk %d: got %d bytes, %v", i, len(got), err)
			}
		}
		if i == 0 && c.Has(ds[0]) {
			t.Fatal("a chunk held in memory was written to the cache")
		}
	}
	if st := x.b.Stats(); st.Requests != 3 || st.CacheBytes != 3*n {
		t.Fatalf("got %d requests and %d bytes from memory, want 3 and %d", st.Requests, st.CacheBytes, 3*n)
	}
	x.f.Close()
	for i, d := range ds {
		if !c.Has(d) {
			t.Errorf("after Close: chunk %d not in the cache", i)
		}
	}
}

// held starts a read of [off, off+n) that the gated registry holds, and
// waits until it is on the wire.
func held(t *testing.T, x *fixture, g *regtest.Gate, off, n int64, prio Priority) *item {
	t.Helper()
	it, err := x.f.join(x.b, off, n, "", prio)
	if err != nil {
		t.Fatal(err)
	}
	if got := <-g.Arrived; got.Range != fmt.Sprintf("bytes=%d-%d", off, off+n-1) {
		t.Fatalf("got %q on the wire, want bytes=%d-%d", got.Range, off, off+n-1)
	}
	return it
}

// arrived waits until n more requests reached the gated registry.
func arrived(g *regtest.Gate, n int) {
	for range n {
		<-g.Arrived
	}
}

func join(t *testing.T, x *fixture, off, n int64, prio Priority) *item {
	t.Helper()
	it, err := x.f.join(x.b, off, n, "", prio)
	if err != nil {
		t.Fatal(err)
	}
	return it
}

func (x *fixture) waitAll(t *testing.T, items ...*item) {
	t.Helper()
	for _, it := range items {
		got, err := x.f.wait(context.Background(), it)
		if err != nil {
			t.Fatal(err)
		}
		if want := x.data[it.key.off:it.end()]; !bytes.Equal(got, want) {
			t.Fatalf("read %d+%d: wrong bytes", it.key.off, it.key.n)
		}
	}
}

func TestSharedAndCoalesced(t *testing.T) {
	opts := testOptions()
	opts.Streams = 1
	x := newFixture(t, 1<<20, opts)
	g := x.r.Hold()
	defer g.Release()
	busy := held(t, x, g, 900_000, 10, OnDemand)
	a1 := join(t, x, 0, 100, Background)
	a2 := join(t, x, 0, 100, OnDemand)
	if a1 != a2 {
		t.Fatal("identical reads were not shared")
	}
	b := join(t, x, 100, 50, Prefetch)
	c := join(t, x, 150, 1000, Background)
	far := join(t, x, 500_000, 10, Background)
	x.r.ResetLog()
	g.Release()
	x.waitAll(t, busy, a1, a2, b, c, far)
	var ranges []string
	for _, q := range x.r.Requests() {
		if q.Range != "bytes=900000-900009" { // held before the log was reset
			ranges = append(ranges, q.Range)
		}
	}
	if want := []string{"bytes=0-1149", "bytes=500000-500009"}; fmt.Sprint(ranges) != fmt.Sprint(want) {
		t.Fatalf("got GETs %q, want %q", ranges, want)
	}
	if st := x.b.Stats(); st.Shared != 1 || st.Coalesced != 2 {
		t.Fatalf("got %d shared, %d coalesced; want 1, 2", st.Shared, st.Coalesced)
	}
}

// TestCoalesceGaps: pending reads at most MaxGap apart share a GET whose
// bytes between them are discarded; farther ones, or any without MaxGap,
// do not.
func TestCoalesceGaps(t *testing.T) {
	for _, c := range []struct {
		name   string
		gap    int64
		want   []string
		gapped int64
	}{
		{"32KiB", 32 << 10, []string{"bytes=1000-66835", "bytes=200000-200099"}, 2 * 32 << 10},
		{"off", 0, []string{"bytes=1000-1099", "bytes=33868-33967", "bytes=66736-66835", "bytes=200000-200099"}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := testOptions()
			opts.Streams, opts.MaxGap = 1, c.gap
			x := newFixture(t, 1<<20, opts)
			g := x.r.Hold()
			defer g.Release()
			busy := held(t, x, g, 900_000, 10, OnDemand)
			reads := []*item{
				join(t, x, 1000, 100, Prefetch),
				join(t, x, 1100+32<<10, 100, Prefetch), // 32 KiB after the first
				join(t, x, 1200+64<<10, 100, Prefetch), // 32 KiB after the second
				join(t, x, 200_000, 100, Prefetch),     // too far
			}
			x.r.ResetLog()
			g.Release()
			x.waitAll(t, append(reads, busy)...)
			var ranges []string
			for _, q := range x.r.Requests() {
				if q.Range != "bytes=900000-900009" {
					ranges = append(ranges, q.Range)
				}
			}
			if fmt.Sprint(ranges) != fmt.Sprint(c.want) {
				t.Fatalf("got GETs %q, want %q", ranges, c.want)
			}
			if got := x.b.Stats().GapBytes; got != c.gapped {
				t.Errorf("got %d gap bytes, want %d", got, c.gapped)
			}
		})
	}
}

func TestPriorities(t *testing.T) {
	opts := testOptions()
	opts.Streams = 2
	x := newFixture(t, 1<<20, opts)
	g := x.r.Hold()
	defer g.Release()
	bg := held(t, x, g, 0, 10, Background)
	// Background uses at most Streams-1 streams: the next waits...
	bg2 := join(t, x, 10_000, 10, Background)
	pf := join(t, x, 20_000, 10, Prefetch)
	// ...but the prefetch read took the spare stream, and an on-demand
	// read queued behind it goes next, ahead of both.
	if got := <-g.Arrived; got.Range != "bytes=20000-20009" {
		t.Fatalf("got %q on the wire, want the prefetch read", got.Range)
	}
	od := join(t, x, 30_000, 10, OnDemand)
	x.r.ResetLog()
	g.Release()
	x.waitAll(t, bg, bg2, pf, od)
	var order []string
	for _, q := range x.r.Requests() {
		if q.Range != "bytes=0-9" && q.Range != "bytes=20000-20009" { // held before the log was reset
			order = append(order, q.Range)
		}
	}
	if want := []string{"bytes=30000-30009", "bytes=10000-10009"}; fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("got GETs in order %q, want %q", order, want)
	}
}

func TestCancel(t *testing.T) {
	opts := testOptions()
	opts.Streams = 1
	x := newFixture(t, 1<<20, opts)
	g := x.r.Hold()
	defer g.Release()
	busy := held(t, x, g, 0, 10, OnDemand)

	// A pending read whose caller gives up leaves the queue.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := x.b.ReadRange(ctx, 5000, 10, OnDemand)
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled pending read: got %v, want context.Canceled", err)
	}
	// An in-flight read whose only caller gives up is abandoned: the held
	// request's client goes away.
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() {
		_, err := x.f.wait(ctx2, busy)
		done <- err
	}()
	cancel2()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled in-flight read: got %v, want context.Canceled", err)
	}
	g.Release()
	x.checkReads(t, 2, 9)
	for _, q := range x.r.Requests() {
		if q.Range == "bytes=5000-5009" {
			t.Fatal("a cancelled pending read was sent")
		}
	}
}

func TestClose(t *testing.T) {
	x := newFixture(t, 1<<20, testOptions())
	x.f.Close()
	if _, err := x.b.ReadRange(context.Background(), 0, 10, OnDemand); !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v, want ErrClosed", err)
	}
}

// TestHostAuthorizer reads through the hosts' own authorizer when no
// Credentials are given, as a containerd resolver would.
func TestHostAuthorizer(t *testing.T) {
	r := regtest.New(t)
	data := blobData(1<<20, 3)
	desc := r.AddBlob(data)
	r.SetCredentials("u", "p")
	r.SetFaults(regtest.Faults{Auth: true})
	az := docker.NewDockerAuthorizer(docker.WithAuthCreds(func(string) (string, string, error) { return "u", "p", nil }))
	hosts := func(host string) ([]docker.RegistryHost, error) {
		hs, err := r.Hosts()(host)
		for i := range hs {
			hs[i].Authorizer = az
		}
		return hs, err
	}
	f := New(testOptions())
	defer f.Close()
	b, err := f.Blob(r.Ref("fn/image"), desc, hosts, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.ReadRange(context.Background(), 100, 1000, OnDemand)
	if err != nil || !bytes.Equal(got, data[100:1100]) {
		t.Fatalf("got %d bytes, %v", len(got), err)
	}
	// Without any authorizer the registry's refusal is final.
	b, err = f.Blob(r.Ref("fn/image"), desc, r.Hosts(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.ReadRange(context.Background(), 0, 10, OnDemand); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("anonymous read of a private blob: got %v, want ErrUnauthorized", err)
	}
}

// TestMirrorFallback reads through a second host when the first one is
// unreachable.
func TestMirrorFallback(t *testing.T) {
	r := regtest.New(t)
	data := blobData(1<<20, 4)
	desc := r.AddBlob(data)
	dead := regtest.New(t)
	dead.Close()
	hosts := func(host string) ([]docker.RegistryHost, error) {
		good, _ := r.Hosts()(r.Host)
		bad := good[0]
		bad.Host = dead.Host
		return []docker.RegistryHost{bad, good[0]}, nil
	}
	f := New(testOptions())
	defer f.Close()
	b, err := f.Blob(r.Ref("fn/image"), desc, hosts, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		off := int64(i) * 1000
		got, err := b.ReadRange(context.Background(), off, 500, OnDemand)
		if err != nil || !bytes.Equal(got, data[off:off+500]) {
			t.Fatalf("read %d: got %d bytes, %v", i, len(got), err)
		}
	}
	if st := b.Stats(); st.Retries != 1 {
		t.Fatalf("got %d retries, want 1 (the dead host once)", st.Retries)
	}
}

// TestCredentialsFlaky reads through a credentials source that fails
// once, as an STS endpoint might for a moment.
func TestCredentialsFlaky(t *testing.T) {
	x := newFixture(t, 1<<20, testOptions())
	x.r.SetFaults(regtest.Faults{Auth: true})
	var calls atomic.Int64
	b, err := x.f.Blob(x.r.Ref("fn/image"), x.desc, x.r.Hosts(), func(host string) (string, string, error) {
		if calls.Add(1) == 1 {
			return "", "", errors.New("sts: service unavailable")
		}
		return x.login.creds(host)
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.ReadRange(context.Background(), 10, 100, OnDemand)
	if err != nil || !bytes.Equal(got, x.data[10:110]) {
		t.Fatalf("got %d bytes, %v", len(got), err)
	}
	if calls.Load() != 2 {
		t.Fatalf("got %d credential calls, want 2", calls.Load())
	}
}

// TestOnDemandRaisesPending: an on-demand read identical to a pending
// prefetch read (a FUSE read of bytes a start-up replay asked for first)
// raises it, so it goes ahead of the other prefetch reads.
func TestOnDemandRaisesPending(t *testing.T) {
	opts := testOptions()
	opts.Streams = 1
	x := newFixture(t, 1<<20, opts)
	g := x.r.Hold()
	defer g.Release()
	busy := held(t, x, g, 900_000, 10, Prefetch)
	p1 := join(t, x, 100_000, 10, Prefetch)
	p2 := join(t, x, 200_000, 10, Prefetch)
	od := join(t, x, 200_000, 10, OnDemand)
	if od != p2 {
		t.Fatal("an identical on-demand read did not join the pending prefetch read")
	}
	x.r.ResetLog()
	g.Release()
	x.waitAll(t, busy, p1, p2, od)
	var order []string
	for _, q := range x.r.Requests() {
		if q.Range != "bytes=900000-900009" {
			order = append(order, q.Range)
		}
	}
	if want := []string{"bytes=200000-200009", "bytes=100000-100009"}; fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("got GETs in order %q, want %q", order, want)
	}
}

// TestBackgroundYields: while a process waits on a read, background reads
// take one stream, not all but one, so they do not starve it of the link;
// without one they take all but one.
func TestBackgroundYields(t *testing.T) {
	opts := testOptions()
	opts.Streams = 4
	opts.BackgroundQuiet = time.Hour
	x := newFixture(t, 1<<20, opts)
	g := x.r.Hold()
	defer g.Release()
	bgState := func() (running, pending int) {
		x.f.mu.Lock()
		defer x.f.mu.Unlock()
		q := x.f.queues[x.b.domain]
		return q.background, len(q.pending)
	}
	var idle []*item
	for i := range 4 {
		idle = append(idle, join(t, x, int64(100_000*(i+1)), 10, Background))
	}
	arrived(g, 3) // GETs are formed and sent by goroutines of their own
	if running, pending := bgState(); running != 3 || pending != 1 {
		t.Fatalf("idle: %d background GETs in flight, %d pending; want 3 (Streams-1) and 1", running, pending)
	}
	g.Release()
	x.waitAll(t, idle...)

	g = x.r.Hold()
	defer g.Release()
	od := join(t, x, 0, 10, OnDemand)
	var busy []*item
	for i := range 3 {
		busy = append(busy, join(t, x, int64(500_000+100_000*i), 10, Background))
	}
	arrived(g, 2)
	if running, pending := bgState(); running != 1 || pending != 2 {
		t.Fatalf("with an on-demand read in flight: %d background GETs in flight, %d pending; want 1 and 2", running, pending)
	}
	g.Release()
	x.waitAll(t, append(busy, od)...)
}
