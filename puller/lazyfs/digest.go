package lazyfs

import "github.com/opencontainers/go-digest"

// isSHA256 reports whether d is a well-formed sha256 digest, as
// d.Validate() == nil && d.Algorithm() == digest.SHA256 would, without
// Validate's regular expression: a layer checks every file's and chunk's
// digest while it loads its TOC and again on each prefetch, and a large
// image has hundreds of thousands.
func isSHA256(d digest.Digest) bool {
	const prefix = "sha256:"
	s := string(d)
	if len(s) != len(prefix)+64 || s[:len(prefix)] != prefix {
		return false
	}
	for i := len(prefix); i < len(s); i++ {
		if !lowerHex[s[i]] {
			return false
		}
	}
	return true
}

var lowerHex = func() (t [256]bool) {
	for _, c := range "0123456789abcdef" {
		t[c] = true
	}
	return t
}()
