package gcpsim

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Operation error codes the simulator reports inside a failed operation (the API's names).
const (
	CodeIPInUse          = "IP_IN_USE_BY_ANOTHER_RESOURCE"
	CodeResourceNotFound = "RESOURCE_NOT_FOUND"
	CodeInternalError    = "INTERNAL_ERROR"
)

// checkAliases validates a NIC's complete new list of alias ranges the way the API does before it
// starts an operation: each range inside the subnetwork's primary range or the named secondary range,
// no reserved address, not the NIC's own primary IP, no overlap within the list, and at most the
// per-interface limit.
func (s *state) checkAliases(n *nic, specs []aliasJSON) ([]alias, *APIError) {
	if len(specs) > s.limit {
		return nil, invalid("resource.aliasIpRanges", "%d alias IP ranges exceed the limit of %d alias IP ranges per network interface", len(specs), s.limit)
	}
	out := make([]alias, 0, len(specs))
	for i, sp := range specs {
		a, aerr := s.checkAlias(n, sp, fmt.Sprintf("resource.aliasIpRanges[%d]", i))
		if aerr != nil {
			return nil, aerr
		}
		for _, prev := range out {
			if prev.prefix.Overlaps(a.prefix) {
				return nil, invalid("resource.aliasIpRanges", "alias IP ranges %s and %s overlap", prev.prefix, a.prefix)
			}
		}
		out = append(out, a)
	}
	return out, nil
}

func (s *state) checkAlias(n *nic, sp aliasJSON, field string) (alias, *APIError) {
	p, err := parseRange(sp.IPCIDRRange)
	if err != nil {
		return alias{}, invalid(field+".ipCidrRange", "%q: %v", sp.IPCIDRRange, err)
	}
	a := alias{prefix: p, rangeName: sp.SubnetworkRangeName}
	if a.rangeName != "" {
		for _, r := range n.subnet.secondary {
			if r.RangeName == a.rangeName {
				if sec := netip.MustParsePrefix(r.IPCIDRRange); sec.Bits() <= p.Bits() && sec.Contains(p.Addr()) {
					return a, nil
				}
				return alias{}, invalid(field+".ipCidrRange", "%s is outside secondary range %q (%s) of subnetwork %s", p, r.RangeName, r.IPCIDRRange, n.subnet.name)
			}
		}
		return alias{}, invalid(field+".subnetworkRangeName", "subnetwork %s has no secondary range %q", n.subnet.name, a.rangeName)
	}
	if n.subnet.primary.Bits() > p.Bits() || !n.subnet.primary.Contains(p.Addr()) {
		return alias{}, invalid(field+".ipCidrRange", "%s is outside the primary range %s of subnetwork %s", p, n.subnet.primary, n.subnet.name)
	}
	if p.Bits() == 32 {
		if why := reservedReason(p.Addr(), n.subnet.primary); why != "" {
			return alias{}, invalid(field+".ipCidrRange", "%s", why)
		}
	}
	if p.Contains(n.ip) {
		return alias{}, invalid(field+".ipCidrRange", "%s contains the interface's primary IP %s", p, n.ip)
	}
	return a, nil
}

// parseRange reads an alias ipCidrRange: one address (a /32) or a CIDR. The API can also allocate a range
// from a bare netmask ("/28"); the simulator does not.
func parseRange(s string) (netip.Prefix, error) {
	if strings.HasPrefix(s, "/") {
		return netip.Prefix{}, fmt.Errorf("allocation from a netmask is not simulated: name the range")
	}
	if !strings.Contains(s, "/") {
		ip, err := netip.ParseAddr(s)
		if err != nil || !ip.Is4() {
			return netip.Prefix{}, fmt.Errorf("not an IPv4 address or CIDR")
		}
		return netip.PrefixFrom(ip, 32), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() || p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("not an IPv4 network address")
	}
	return p, nil
}

// checkInUse refuses ranges that another NIC of the network holds, as primary IP or alias: the API
// reports this inside the operation, not in the answer to the request.
func (s *state) checkInUse(n *nic, aliases []alias) *OperationError {
	for _, a := range aliases {
		if holder := s.holderOf(n.subnet.network, a.prefix, n); holder != "" {
			return &OperationError{Code: CodeIPInUse, Message: fmt.Sprintf("IP '%s' is already being used by another resource.", rangeString(a.prefix)), status: http.StatusBadRequest}
		}
	}
	return nil
}

// rangeString writes a /32 as the API does, without the prefix length.
func rangeString(p netip.Prefix) string {
	if p.Bits() == 32 {
		return p.Addr().String()
	}
	return p.String()
}
