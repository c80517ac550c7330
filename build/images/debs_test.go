package main

import (
	"slices"
	"testing"
)

func TestFirstAlternatives(t *testing.T) {
	out := []byte(`ca-certificates
  Depends: openssl
 |Depends: debconf
  Depends: <debconf-2.0>
    cdebconf
    debconf
  Depends: libc6
  PreDepends: <awk>
    mawk
    gawk
`)
	got := firstAlternatives(out)
	// debconf is the first of its alternatives; the virtual debconf-2.0 is maintainer-only and skipped
	// with its providers; a virtual package's first provider stands for it.
	want := []string{"openssl", "debconf", "libc6", "mawk"}
	if !slices.Equal(got, want) {
		t.Errorf("firstAlternatives = %v, want %v", got, want)
	}
}

func TestMergedPath(t *testing.T) {
	for in, want := range map[string]string{
		"sbin/ipset": "usr/sbin/ipset", "lib/x86_64-linux-gnu/libc.so.6": "usr/lib/x86_64-linux-gnu/libc.so.6",
		"lib": "usr/lib", "usr/sbin/nft": "usr/sbin/nft", "library/x": "library/x", "etc/ethertypes": "etc/ethertypes",
	} {
		if got := mergedPath(in); got != want {
			t.Errorf("mergedPath(%q) = %q, want %q", in, got, want)
		}
	}
}
