package imagetest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"path"
	"strings"
)

// The reference applier: it applies layers' tar streams in order to an
// in-memory tree, following the OCI image spec's rules for whiteouts
// (".wh.<name>" deletes <name> of lower layers) and opaque directories
// (".wh..wh..opq" hides every lower entry of its directory). The suite
// compares an implementation's prepared tree against it.

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// node is one file of a tree. Hard links share a *node.
type node struct {
	typ     byte // tar.TypeReg, TypeDir, TypeSymlink, TypeChar, TypeBlock, TypeFifo
	mode    int64
	uid     int
	gid     int
	content []byte
	target  string // symlink target
	major   int64
	minor   int64
	xattrs  map[string]string
}

// tree maps clean relative paths ("etc/hello") to nodes.
type tree map[string]*node

// apply applies the uncompressed tar layers in order, bottom first.
func apply(layers [][]byte) (tree, error) {
	t := tree{}
	for i, l := range layers {
		if err := t.applyLayer(l); err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
	}
	return t, nil
}

func (t tree) applyLayer(layer []byte) error {
	added := map[string]bool{}
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		p := path.Clean(strings.TrimPrefix(hdr.Name, "/"))
		dir, base := path.Split(p)
		dir = path.Clean(dir)
		switch {
		case base == opaqueMarker:
			for q := range t {
				if under(q, dir) && !added[q] {
					delete(t, q)
				}
			}
			continue
		case strings.HasPrefix(base, whiteoutPrefix):
			t.remove(path.Join(dir, strings.TrimPrefix(base, whiteoutPrefix)))
			continue
		}
		n, err := t.node(hdr, tr)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if old, ok := t[p]; ok && (old.typ != tar.TypeDir || n.typ != tar.TypeDir) {
			t.remove(p)
		}
		t[p] = n
		added[p] = true
	}
}

func (t tree) node(hdr *tar.Header, r io.Reader) (*node, error) {
	if hdr.Typeflag == tar.TypeLink {
		target, ok := t[path.Clean(strings.TrimPrefix(hdr.Linkname, "/"))]
		if !ok {
			return nil, fmt.Errorf("hard link to missing %s", hdr.Linkname)
		}
		return target, nil
	}
	n := &node{typ: hdr.Typeflag, mode: hdr.Mode & 0o7777, uid: hdr.Uid, gid: hdr.Gid,
		target: hdr.Linkname, major: hdr.Devmajor, minor: hdr.Devminor, xattrs: map[string]string{}}
	if n.typ == tar.TypeRegA {
		n.typ = tar.TypeReg
	}
	if n.typ != tar.TypeSymlink {
		n.target = ""
	}
	if n.typ != tar.TypeChar && n.typ != tar.TypeBlock {
		n.major, n.minor = 0, 0
	}
	for k, v := range hdr.PAXRecords {
		if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok && compared(x) {
			n.xattrs[x] = v
		}
	}
	if n.typ == tar.TypeReg {
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		n.content = b
	}
	return n, nil
}

// remove deletes p and everything under it.
func (t tree) remove(p string) {
	delete(t, p)
	for q := range t {
		if under(q, p) {
			delete(t, q)
		}
	}
}

// under tells whether q is strictly inside directory dir.
func under(q, dir string) bool {
	if dir == "." {
		return q != "."
	}
	return strings.HasPrefix(q, dir+"/")
}

// compared tells whether the suite compares xattr name.
func compared(name string) bool {
	return strings.HasPrefix(name, "user.") || name == "security.capability"
}
