package instance

import (
	"context"
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/fcd-dev/fcd/internal/testenv"
)

// isExt4 reports whether path holds an ext4 superblock.
func isExt4(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 2)
	if _, err := f.ReadAt(b, 1024+0x38); err != nil {
		t.Fatal(err)
	}
	return binary.LittleEndian.Uint16(b) == 0xEF53
}

func TestDiskPool(t *testing.T) {
	testenv.RequireCommand(t, "mkfs.ext4", "e2fsprogs")
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "disks")
	// What an earlier run left: a complete file and an incomplete one.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(dir, "16-left.ext4")
	if err := makeDisk(ctx, left, 16); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "16-partial.ext4.tmp"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p := newDiskPool(dir, 2, slog.New(slog.DiscardHandler))
	out := t.TempDir()

	if p.take(32, filepath.Join(out, "miss")) {
		t.Fatal("take from an empty pool: got true, want false")
	}
	if err := p.fill(ctx); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The pool wants DefaultDiskMB from the start and 32 since the miss;
	// it adopted the 16 MB file and removed the incomplete one.
	count := map[int]int{}
	for _, e := range entries {
		mb, ok := diskFileSize(e.Name())
		if !ok {
			t.Fatalf("pool dir holds %s, want only complete disk files", e.Name())
		}
		count[mb]++
	}
	if want := map[int]int{16: 1, 32: 2, DefaultDiskMB: 2}; len(count) != len(want) || count[16] != 1 || count[32] != 2 || count[DefaultDiskMB] != 2 {
		t.Fatalf("disk files by size: got %v, want %v", count, want)
	}
	for i, mb := range []int{32, 32, 16} {
		path := filepath.Join(out, "disk"+string(rune('a'+i)))
		if !p.take(mb, path) {
			t.Fatalf("take %d MB #%d: got false, want true", mb, i)
		}
		if !isExt4(t, path) {
			t.Fatalf("taken disk %s is not ext4", path)
		}
	}
	if p.take(32, filepath.Join(out, "again")) {
		t.Fatal("take after the pool ran out of 32 MB files: got true, want false")
	}
	if err := p.fill(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(p.ready[32]); got != 2 {
		t.Fatalf("32 MB files after refill: got %d, want 2", got)
	}
}

func TestDiskFileSize(t *testing.T) {
	for _, tc := range []struct {
		name string
		mb   int
		ok   bool
	}{
		{"512-0123abcd.ext4", 512, true},
		{"512-0123abcd.ext4.tmp", 0, false},
		{"x-0123.ext4", 0, false},
		{"0-0123.ext4", 0, false},
		{"512.ext4", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mb, ok := diskFileSize(tc.name)
			if mb != tc.mb || ok != tc.ok {
				t.Fatalf("got %d, %v, want %d, %v", mb, ok, tc.mb, tc.ok)
			}
		})
	}
}
