package nodeagent

import (
	"testing"
)

// TestElementOnly: only a change of address-set members goes through netlink; a changed chain, an
// interval set's members or a set created or deleted keep the nft transaction.
func TestElementOnly(t *testing.T) {
	state := func(mutate func(k *kernelState)) *kernelState {
		k := newKernelState()
		k.nft = &nftTable{chains: map[string]*nftChain{"prerouting": {header: "h", rules: []string{"r1"}}}}
		k.sets["egressgw-s-a"] = &setState{typ: "hash:ip", members: []string{"10.244.1.10"}}
		k.sets["egressgw-d-a"] = &setState{typ: "hash:net", members: []string{"198.51.100.0/24"}}
		if mutate != nil {
			mutate(k)
		}
		return k
	}
	have := state(nil)
	cases := []struct {
		name   string
		want   *kernelState
		ok     bool
		change []elementChange
	}{
		{"nothing", state(nil), true, nil},
		{"a pod added and one deleted", state(func(k *kernelState) { k.sets["egressgw-s-a"].members = []string{"10.244.1.11"} }), true,
			[]elementChange{{set: "egressgw-s-a", adds: []string{"10.244.1.11"}, dels: []string{"10.244.1.10"}}}},
		{"a destination", state(func(k *kernelState) { k.sets["egressgw-d-a"].members = []string{"203.0.113.0/24"} }), false, nil},
		{"a rule", state(func(k *kernelState) { k.nft.chains["prerouting"].rules = []string{"r2"} }), false, nil},
		{"a new set", state(func(k *kernelState) { k.sets["egressgw-s-b"] = &setState{typ: "hash:ip"} }), false, nil},
		{"a set's type", state(func(k *kernelState) { k.sets["egressgw-s-a"].typ = "hash:net" }), false, nil},
	}
	for _, tc := range cases {
		got, ok := elementOnly(have, tc.want)
		if ok != tc.ok || len(got) != len(tc.change) {
			t.Errorf("%s: %+v, %v; want %+v, %v", tc.name, got, ok, tc.change, tc.ok)
			continue
		}
		for i := range got {
			if got[i].set != tc.change[i].set || len(got[i].adds) != len(tc.change[i].adds) || len(got[i].dels) != len(tc.change[i].dels) ||
				(len(got[i].adds) > 0 && got[i].adds[0] != tc.change[i].adds[0]) {
				t.Errorf("%s: %+v, want %+v", tc.name, got[i], tc.change[i])
			}
		}
	}
	if _, err := ipv4Elements([]string{"10.0.0.1", "fd00::1"}); err == nil {
		t.Error("an IPv6 member passed as an IPv4 element")
	}
}
