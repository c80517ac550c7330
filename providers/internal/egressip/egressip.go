// Package egressip holds the checks of an egress IP that every egressgw cloud provider makes before it
// calls its cloud, with the same errors: egress IPs are IPv4 addresses of the node's subnet.
package egressip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/egressgw/egressgw/providers"
)

// IPv4 refuses an address that is not IPv4 (ErrPermanent); cloud names the provider ("AWS").
func IPv4(ip netip.Addr, cloud string) error {
	if !ip.Is4() {
		return fmt.Errorf("%s: egress IPs on %s are IPv4 addresses: %w", ip, cloud, providers.ErrPermanent)
	}
	return nil
}

// InSubnet refuses an address that is not IPv4, or not inside subnet (ID subnetID) of node's egress
// interface (ErrOutsideSubnet): the cloud could never put it there.
func InSubnet(ip netip.Addr, cloud string, subnet netip.Prefix, subnetID, node string) error {
	if err := IPv4(ip, cloud); err != nil {
		return err
	}
	if !subnet.Contains(ip) {
		return fmt.Errorf("%s is not in subnet %s (%s) of node %s: %w", ip, subnetID, subnet, node, providers.ErrOutsideSubnet)
	}
	return nil
}

// Wanted is the set of ips a Locate looks for, refusing (as "locate <ip>: ...") any that is not IPv4.
func Wanted(ips []netip.Addr, cloud string) (map[netip.Addr]bool, error) {
	wanted := make(map[netip.Addr]bool, len(ips))
	for _, ip := range ips {
		if err := IPv4(ip, cloud); err != nil {
			return nil, fmt.Errorf("locate %w", err)
		}
		wanted[ip] = true
	}
	return wanted, nil
}

// ExplainInUse adds ErrIPInUse to err, a cloud's refusal of ip as held by another NIC
// (ErrAssignedElsewhere), when locate shows that the holder is not egressgw's, so that Assign refuses
// what Locate reports in use the way the contract says. Clouds that refuse without saying who holds the
// address need the read; it is made on this refusal only, and a failed read leaves err as it is.
func ExplainInUse(ctx context.Context, locate func(context.Context, []netip.Addr) (map[netip.Addr]providers.Location, error), ip netip.Addr, err error) error {
	if !errors.Is(err, providers.ErrAssignedElsewhere) || errors.Is(err, providers.ErrIPInUse) {
		return err
	}
	locs, lerr := locate(ctx, []netip.Addr{ip})
	if lerr != nil || locs[ip].InUse == "" {
		return err
	}
	return fmt.Errorf("%s: %w: %w", locs[ip].InUse, providers.ErrIPInUse, err)
}
