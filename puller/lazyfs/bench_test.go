package lazyfs

import (
	"bytes"
	"path/filepath"
	"testing"
)

// BenchmarkRead reads a 32 MiB file of a mounted layer from a cold page
// cache: through the daemon (each read decoded from the source, whose
// blob is in memory), and by passthrough once the file is local.
func BenchmarkRead(b *testing.B) {
	testenvFUSE(b)
	data := pseudoRandom(9, 32<<20)
	built := buildLayer(b, []tarEntry{dirE("big/", 0o755, 0, 0), fileE("big/file", 0o644, data)})
	for mode, src := range built.sources(b) {
		for _, pt := range []bool{false, true} {
			name := mode + "/daemon"
			opts := MountOptions{}
			if pt {
				name, opts.CacheDir = mode+"/passthrough", b.TempDir()
			}
			b.Run(name, func(b *testing.B) {
				l, err := Mount(b.TempDir(), src, opts)
				if err != nil {
					b.Fatal(err)
				}
				defer l.Unmount()
				p := filepath.Join(l.Dir(), "big/file")
				if got := readCold(b, p); !bytes.Equal(got, data) {
					b.Fatal("content differs")
				}
				l.bg.wait()
				waitReleased(b, l)
				reads := l.Stats().Reads
				b.SetBytes(int64(len(data)))
				b.ResetTimer()
				for b.Loop() {
					readCold(b, p)
				}
				b.ReportMetric(float64(l.Stats().Reads-reads)/float64(b.N), "daemon-reads/op")
			})
		}
	}
}

// BenchmarkServed records the reads of a 1 GiB file served in order
// through the daemon, 128 KiB at a time (all but its last block, so that
// it is not materialized): what finding out that a file was read whole
// costs a read.
func BenchmarkServed(b *testing.B) {
	const size, read = 1 << 30, 128 << 10
	l := &Layer{small: 128 << 10}
	for b.Loop() {
		n := &tnode{size: size}
		for off := int64(0); off < size-read; off += read {
			l.served(n, off, read)
		}
		l.served(n, size-read, read-seenBlock)
	}
}
