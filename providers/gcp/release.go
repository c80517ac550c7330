package gcp

import (
	"context"
	"fmt"
	"net/netip"

	"cloud.google.com/go/compute/apiv1/computepb"

	"github.com/egressgw/egressgw/providers"
)

// Release implements providers.Provider: nic0's alias ranges less the /32 of the IP, the others (GKE's pod
// range) kept. The PATCH names only this node's NIC, so it never touches another node; an IP that is not
// on nic0 is left alone. Removing the NIC's last alias range sends an explicitly empty list (see
// withEmptyFields), without which Compute Engine would change nothing.
func (p *Provider) Release(ctx context.Context, node providers.Node, a providers.Assignment) error {
	return p.onNode(ctx, node, func(ctx context.Context, at attachment) error {
		if !a.IP.Is4() || !at.subnet.primary.Contains(a.IP) {
			return nil // Compute Engine cannot have it here as an egress IP
		}
		err := p.editAliases(ctx, at, "release", func(nic *computepb.NetworkInterface) ([]*computepb.AliasIpRange, bool, error) {
			return withoutAlias(at, nic, a.IP)
		})
		if err != nil {
			return fmt.Errorf("release %s from node %s: %w", a.IP, at.node, err)
		}
		p.log.Info("released egress IP", "node", at.node, "instance", at.ref.key(), "ip", a.IP)
		return nil
	})
}

// withoutAlias is nic0's alias ranges less the /32 of ip, or done when ip is not there.
func withoutAlias(at attachment, nic *computepb.NetworkInterface, ip netip.Addr) ([]*computepb.AliasIpRange, bool, error) {
	if nic.GetNetworkIP() == ip.String() {
		return nil, false, fmt.Errorf("%s is the primary address of node %s (nic0) and cannot be released: %w", ip, at.node, providers.ErrPermanent)
	}
	for i, r := range nic.AliasIpRanges {
		pf, ok := aliasPrefix(r)
		switch {
		case ok && pf.Bits() == 32 && pf.Addr() == ip:
			return without(nic.AliasIpRanges, i), false, nil
		case ok && pf.Contains(ip):
			return nil, false, fmt.Errorf("%s lies in alias range %s of node %s, which is not an egress IP and stays: %w", ip, pf, at.node, providers.ErrPermanent)
		}
	}
	return nil, true, nil
}
