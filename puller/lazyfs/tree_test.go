package lazyfs

import (
	"archive/tar"
	"errors"
	"strings"
	"testing"
)

func TestBuildTreeRefuses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []Entry
	}{
		{"hard link outside the layer", []Entry{{Name: "a", Type: tar.TypeLink, Linkname: "lower/file"}}},
		{"hard link to a directory", []Entry{{Name: "d", Type: tar.TypeDir}, {Name: "l", Type: tar.TypeLink, Linkname: "d"}}},
		{"hard link to a replaced file", []Entry{
			{Name: "f", Type: tar.TypeReg, Size: 1},
			{Name: "l", Type: tar.TypeLink, Linkname: "f"},
			{Name: "f", Type: tar.TypeReg, Size: 2},
		}},
		{"entries below a file", []Entry{{Name: "f", Type: tar.TypeReg}, {Name: "f/x", Type: tar.TypeReg}}},
		{"unknown type", []Entry{{Name: "s", Type: tar.TypeGNUSparse}}},
		// A full unpack could not create these names either; a whiteout
		// of "", "." or ".." would be a child of that name.
		{"whiteout of nothing", []Entry{{Name: "d/.wh.", Type: tar.TypeReg}}},
		{"whiteout of its directory", []Entry{{Name: "d/.wh..", Type: tar.TypeReg}}},
		{"whiteout of its parent", []Entry{{Name: "d/.wh...", Type: tar.TypeReg}}},
		{"NUL in a name", []Entry{{Name: "etc/passwd\x00x", Type: tar.TypeReg}}},
		{"element too long", []Entry{{Name: "d/" + strings.Repeat("x", 256), Type: tar.TypeDir}}},
		// Each directory of a deep name kept its own copy of its path
		// (quadratic memory), and a walk recursed once a level.
		{"name too long", []Entry{{Name: strings.Repeat("a/", 2048) + "f", Type: tar.TypeReg}}},
		{"symlink target too long", []Entry{{Name: "s", Type: tar.TypeSymlink, Linkname: strings.Repeat("a", 4096)}}},
		{"NUL in an xattr name", []Entry{{Name: "f", Type: tar.TypeReg, Xattrs: map[string]string{"user.a\x00security.capability": "x"}}}},
		{"empty xattr name", []Entry{{Name: "d", Type: tar.TypeDir, Xattrs: map[string]string{"": "x"}}}},
		{"xattr too long", []Entry{{Name: "d", Type: tar.TypeDir, Xattrs: map[string]string{"user.a": strings.Repeat("x", 64<<10+1)}}}},
		// A file's size sizes what reads of it allocate.
		{"negative size", []Entry{{Name: "f", Type: tar.TypeReg, Size: -1}}},
		{"huge file", []Entry{{Name: "f", Type: tar.TypeReg, Size: 1 << 62}}},
		{"huge layer", []Entry{
			{Name: "f", Type: tar.TypeReg, Size: maxLayerBytes / 2},
			{Name: "g", Type: tar.TypeReg, Size: maxLayerBytes / 2},
			{Name: "h", Type: tar.TypeReg, Size: 1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := buildTree(tc.entries); !errors.Is(err, ErrUnsupported) {
				t.Errorf("got %v, want ErrUnsupported", err)
			}
		})
	}
}

func TestBuildTreeReplacedFileNotLinked(t *testing.T) {
	tr, err := buildTree([]Entry{
		{Name: "f", Type: tar.TypeReg, Size: 1},
		{Name: "f", Type: tar.TypeReg, Size: 2},
		{Name: "l", Type: tar.TypeLink, Linkname: "f"},
	})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := tr.lookup("f")
	l, _ := tr.lookup("l")
	if f != l || f.size != 2 || f.nlink != 2 {
		t.Errorf("f and l: same node %v, size %d, nlink %d; want the second f twice", f == l, f.size, f.nlink)
	}
}

// TestBuildTreeLimits: a layer of more entries, or whose names make more
// nodes, than the bounds is refused.
func TestBuildTreeLimits(t *testing.T) {
	defer func(n int) { maxEntries = n }(maxEntries)
	maxEntries = 10
	deep := strings.Repeat("a/", 7) + "a"
	for _, tc := range []struct {
		name    string
		entries []Entry
	}{
		{"entries", make([]Entry, 11)},
		{"nodes", []Entry{{Name: "x/" + deep, Type: tar.TypeDir}, {Name: "y/" + deep, Type: tar.TypeDir}, {Name: "z/" + deep, Type: tar.TypeDir}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := buildTree(tc.entries); !errors.Is(err, ErrUnsupported) {
				t.Errorf("got %v, want ErrUnsupported", err)
			}
		})
	}
	if _, err := buildTree(make([]Entry, 10)); err != nil {
		t.Errorf("10 entries: %v", err)
	}
}
