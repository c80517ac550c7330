package gcp

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"cloud.google.com/go/compute/apiv1/computepb"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/providers/internal/egressip"
)

// errPublicIP is why a public IP is refused on GCP (docs/gcp.md, "Public egress").
const errPublicIP = "a public IP for an egress IP is not supported on GCP: an external IP maps only to a NIC's primary address, " +
	"and Cloud NAT rules that select by source address are a Preview feature; leave publicIP empty and give the egress IPs' " +
	"traffic a public address with a Cloud NAT gateway (MANUAL_ONLY static addresses) for the gateways' subnetwork or range, " +
	"or, when per-namespace public egress is all that is needed, GKE's managed egress NAT"

// Assign implements providers.Provider: one alias range of one address on nic0, beside the ones already
// there. Compute Engine itself refuses an address another NIC holds (IP_IN_USE_BY_ANOTHER_RESOURCE in the
// operation), which is ErrAssignedElsewhere, and ErrIPInUse as well when Locate shows the holder is not
// egressgw's (an address inside another tool's alias range); nothing is taken from another node.
func (p *Provider) Assign(ctx context.Context, node providers.Node, a providers.Assignment) error {
	if a.PublicIP != "" {
		return fmt.Errorf("assign %s (publicIP %q) to node %s: %s: %w", a.IP, a.PublicIP, node.Name, errPublicIP, providers.ErrPermanent)
	}
	return p.onNode(ctx, node, func(ctx context.Context, at attachment) error {
		if err := at.check(a.IP); err != nil {
			return err
		}
		err := p.editAliases(ctx, at, "assign", func(nic *computepb.NetworkInterface) ([]*computepb.AliasIpRange, bool, error) {
			return p.withAlias(at, nic, a.IP)
		})
		if err != nil {
			return fmt.Errorf("assign %s to node %s: %w", a.IP, at.node, egressip.ExplainInUse(ctx, p.Locate, a.IP, err))
		}
		p.log.Info("assigned egress IP", "node", at.node, "instance", at.ref.key(), "ip", a.IP)
		return nil
	})
}

// withAlias is nic0's alias ranges with a /32 of ip added, or done when ip is there already.
func (p *Provider) withAlias(at attachment, nic *computepb.NetworkInterface, ip netip.Addr) ([]*computepb.AliasIpRange, bool, error) {
	if nic.GetNetworkIP() == ip.String() {
		return nil, true, nil
	}
	for _, r := range nic.AliasIpRanges {
		pf, ok := aliasPrefix(r)
		switch {
		case ok && pf.Bits() == 32 && pf.Addr() == ip:
			return nil, true, nil
		case ok && pf.Contains(ip):
			return nil, false, fmt.Errorf("%s lies in alias range %s of node %s, which another tool manages: %w: %w", ip, pf, at.node, providers.ErrIPInUse, providers.ErrPermanent)
		}
	}
	if full(p.opts.AliasRangesPerInterface, nic.AliasIpRanges) {
		return nil, false, fmt.Errorf("nic0 of node %s has %d alias ranges, Compute Engine's limit per interface: %w", at.node, len(nic.AliasIpRanges), providers.ErrCapacityExhausted)
	}
	return append(slices.Clone(nic.AliasIpRanges), &computepb.AliasIpRange{IpCidrRange: ptr(netip.PrefixFrom(ip, 32).String())}), false, nil
}

func ptr[T any](v T) *T { return &v }
