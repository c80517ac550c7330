package gcp

import (
	"net/netip"

	"cloud.google.com/go/compute/apiv1/computepb"
)

// AliasRangesPerInterface is Compute Engine's limit of alias IP ranges on one network interface: 100,
// for every machine type (VPC quotas and limits, "per instance": alias IP ranges per network interface).
// The network as a whole has its own quota of alias ranges (15,000 by default), counted by the cloud.
const AliasRangesPerInterface = 100

// capacity is how many addresses nic0 can hold in NodeInfo's terms: its primary IP plus one per alias
// range it may still get or already has as an address. Alias ranges wider than one address (GKE's pod
// range) use a slot without being an address, so they lower the capacity instead of counting in
// NodeInfo.Addresses.
func capacity(limit int, ranges []*computepb.AliasIpRange) int {
	wide := 0
	for _, r := range ranges {
		if p, ok := aliasPrefix(r); !ok || p.Bits() != 32 {
			wide++
		}
	}
	return 1 + limit - wide
}

// full reports whether nic0 can take no more alias ranges.
func full(limit int, ranges []*computepb.AliasIpRange) bool {
	return len(ranges) >= limit
}

// aliasPrefix reads an alias range; the API writes a single address with or without /32.
func aliasPrefix(r *computepb.AliasIpRange) (netip.Prefix, bool) {
	s := r.GetIpCidrRange()
	if ip, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(ip, ip.BitLen()), true
	}
	p, err := netip.ParsePrefix(s)
	return p, err == nil
}
