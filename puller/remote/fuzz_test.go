package remote

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/fcd-dev/fcd/internal/regtest"
	"github.com/opencontainers/go-digest"
)

// FuzzReads reads random ranges, concurrently and with random
// priorities, from a registry misbehaving in a random way, and checks
// every read against the blob: a read may only fail when the registry
// was told to refuse for good, never return wrong bytes.
func FuzzReads(f *testing.F) {
	f.Add(uint16(0), uint16(0), []byte{0, 0, 0, 1, 0, 0, 0, 2})
	f.Add(uint16(0xffff), uint16(1000), []byte("0123456789abcdefghijklmnopqrstuvwxyz"))
	f.Add(uint16(0x0102), uint16(20000), []byte{9, 9, 9, 9, 1, 2, 3, 4, 200, 0, 0, 7})
	f.Fuzz(func(t *testing.T, bits, after uint16, reads []byte) {
		const size = 256 << 10
		opts := testOptions()
		opts.StallTimeout = 50 * time.Millisecond
		opts.Streams = 1 + int(bits>>12)%4
		opts.MaxRequest = 1 << (12 + int(bits>>8)%8)
		x := newFixture(t, size, opts)
		fl := regtest.Faults{
			RefuseMultiRange: bits&1 != 0,
			IgnoreRange:      bits&2 != 0,
			Redirect:         bits&4 != 0,
			Auth:             bits&8 != 0,
			StallAfter:       int64(after) % size,
			DropAfter:        int64(after) % size,
			FailStatus:       http.StatusBadGateway,
		}
		if bits&16 != 0 {
			fl.ExpiredStatus = http.StatusForbidden
		}
		if bits&32 != 0 {
			fl.Stalls = 1
		}
		if bits&64 != 0 {
			fl.Drops = 2
		}
		if bits&128 != 0 {
			fl.Fails = 2
		}
		x.r.SetFaults(fl)
		var wg sync.WaitGroup
		for i := 0; i+4 <= len(reads) && i < 4*16; i += 4 {
			v := binary.LittleEndian.Uint32(reads[i:])
			off := int64(v % size)
			n := int64(v>>8)%(size-off) + 1
			prio := Priority(v % 3)
			verified := v&8 != 0
			if i == 4*8 && fl.Auth {
				x.login.rotate()
				x.r.ExpireTokens()
			}
			wg.Go(func() {
				var want digest.Digest
				if verified {
					want = digest.FromBytes(x.data[off : off+n])
				}
				got, err := x.b.ReadChunk(context.Background(), off, n, want, prio)
				if err != nil {
					t.Errorf("read %d+%d with faults %+v: %v", off, n, fl, err)
					return
				}
				if !bytes.Equal(got, x.data[off:off+n]) {
					t.Errorf("read %d+%d with faults %+v: wrong bytes", off, n, fl)
				}
			})
		}
		wg.Wait()
	})
}
