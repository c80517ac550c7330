package ec2sim

import (
	"net/netip"
	"slices"
)

// Address bookkeeping of subnets: which addresses and /28 prefixes are free, as EC2 picks them when a
// request asks for a count instead of naming addresses.

// prefixHolder returns the interface holding the delegated /28 prefix that contains ip, if any.
func (s *state) prefixHolder(vpc string, ip netip.Addr) (string, bool) {
	p, _ := ip.Prefix(28)
	id, ok := s.prefixOwner[vpcPrefix{vpc, p}]
	return id, ok
}

// prefixUnusable says why EC2 would not delegate p in sn ("" when it would): it must lie inside the
// subnet, hold none of the addresses AWS reserves, and none of its addresses or itself may be in use.
func (s *state) prefixUnusable(p netip.Prefix, sn subnet) string {
	if !sn.cidr.Contains(p.Addr()) || p.Bits() < sn.cidr.Bits() {
		return "prefix does not fall within the subnet's address range " + sn.cidr.String()
	}
	if holder, ok := s.prefixOwner[vpcPrefix{sn.vpc, p}]; ok {
		return "prefix is already delegated to " + holder
	}
	for ip := p.Addr(); p.Contains(ip); ip = ip.Next() {
		if reservedReason(ip, sn.cidr) != "" {
			return "prefix holds an address reserved by AWS"
		}
		if holder, ok := s.owner[vpcAddr{sn.vpc, ip}]; ok {
			return "prefix overlaps address " + ip.String() + " of " + holder
		}
	}
	return ""
}

// freeAddrs returns the n lowest addresses of sn that nobody holds, or false when the subnet has fewer.
func (s *state) freeAddrs(sn subnet, n int) ([]netip.Addr, bool) {
	var out []netip.Addr
	for ip := sn.cidr.Addr(); sn.cidr.Contains(ip) && len(out) < n; ip = ip.Next() {
		if reservedReason(ip, sn.cidr) != "" {
			continue
		}
		_, held := s.owner[vpcAddr{sn.vpc, ip}]
		_, inPrefix := s.prefixHolder(sn.vpc, ip)
		if !held && !inPrefix {
			out = append(out, ip)
		}
	}
	return out, len(out) == n
}

// freePrefixes returns the n lowest /28 prefixes of sn that EC2 could delegate, or false when fewer fit.
func (s *state) freePrefixes(sn subnet, n int) ([]netip.Prefix, bool) {
	var out []netip.Prefix
	if sn.cidr.Bits() > 28 {
		return nil, n == 0
	}
	for ip := sn.cidr.Addr(); sn.cidr.Contains(ip) && len(out) < n; {
		p := netip.PrefixFrom(ip, 28)
		if s.prefixUnusable(p, sn) == "" {
			out = append(out, p)
		}
		ip = lastAddr(p).Next()
		if !ip.IsValid() {
			break
		}
	}
	return out, len(out) == n
}

// assignPrefixes delegates prefixes to the interface n, checking everything first.
func (s *state) assignPrefixes(n eni, prefixes []netip.Prefix) *APIError {
	sn := s.subnets[n.subnet]
	var fresh []netip.Prefix
	for _, p := range prefixes {
		if p.Bits() != 28 || p != p.Masked() {
			return apiErr(CodeInvalidParameterValue, "Invalid value '%s' for Ipv4Prefix: only /28 network addresses can be delegated", p)
		}
		if s.prefixOwner[vpcPrefix{n.vpc, p}] == n.id || slices.Contains(fresh, p) {
			continue
		}
		if why := s.prefixUnusable(p, sn); why != "" {
			return apiErr(CodeInvalidParameterValue, "Prefix %s: %s", p, why)
		}
		fresh = append(fresh, p)
	}
	if n.slots()+len(fresh) > s.limit(n) {
		return apiErr(CodeIPLimitExceeded, "Number of private addresses will exceed limit.")
	}
	for _, p := range fresh {
		n.prefixes = append(n.prefixes, p)
		s.prefixOwner[vpcPrefix{n.vpc, p}] = n.id
	}
	s.enis[n.id] = n
	return nil
}

// unassignPrefixes removes delegated prefixes from eniID; all must be there.
func (s *state) unassignPrefixes(n eni, prefixes []netip.Prefix) *APIError {
	for _, p := range prefixes {
		if !slices.Contains(n.prefixes, p) {
			return apiErr(CodeInvalidParameterValue, "Some of the specified prefixes are not assigned to interface %s", n.id)
		}
	}
	for _, p := range prefixes {
		n.prefixes = slices.DeleteFunc(slices.Clone(n.prefixes), func(q netip.Prefix) bool { return q == p })
		delete(s.prefixOwner, vpcPrefix{n.vpc, p})
	}
	s.enis[n.id] = n
	return nil
}
