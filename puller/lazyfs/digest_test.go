package lazyfs

import (
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestIsSHA256(t *testing.T) {
	valid := digest.FromString("x")
	for _, d := range []digest.Digest{
		valid, "", "sha256:", valid[:len(valid)-1], valid + "0",
		"sha256:" + digest.Digest(string(make([]byte, 64))),
		digest.Digest("sha256:ABCDEF" + valid.Encoded()[6:]),
		digest.Digest("sha256:g" + valid.Encoded()[1:]),
		digest.Digest("sha512:" + valid.Encoded()),
		digest.SHA512.FromString("x"), digest.SHA384.FromString("x"),
		"md5:d41d8cd98f00b204e9800998ecf8427e",
	} {
		want := d.Validate() == nil && d.Algorithm() == digest.SHA256
		if got := isSHA256(d); got != want {
			t.Errorf("isSHA256(%q): got %v, want %v", d, got, want)
		}
	}
}
