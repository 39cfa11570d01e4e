package lazyfs

import (
	"archive/tar"
	"errors"
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
