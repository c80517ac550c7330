package gcp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/api/iterator"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/providers/internal/egressip"
)

// Locate implements providers.Provider with one paginated instances.aggregatedList over Options.Project
// (every zone at once): Compute Engine cannot search instances by alias address, so the provider reads
// them all and looks at every NIC's primary IP and alias ranges. Only a /32 alias range of the primary
// range on nic0 is what egressgw adds; an IP anywhere else (inside a wider alias range, a range taken
// from a secondary range such as GKE's pod range, on another NIC) is reported with Location.InUse, as
// is an IP found in two networks when the provider is not limited to one.
func (p *Provider) Locate(ctx context.Context, ips []netip.Addr) (map[netip.Addr]providers.Location, error) {
	ctx, cancel := p.bound(ctx)
	defer cancel()
	wanted, err := egressip.Wanted(ips, "GCP")
	if err != nil {
		return nil, err
	}
	if len(wanted) == 0 {
		return map[netip.Addr]providers.Location{}, nil
	}
	return call(ctx, p, groupRead, "instances.aggregatedList", func(ctx context.Context) (map[netip.Addr]providers.Location, error) {
		return p.scan(ctx, wanted)
	})
}

// found is a Location and the network it was found in.
type found struct {
	providers.Location
	network string
}

// scan reads every instance of the project once (a failed page restarts the scan in call).
func (p *Provider) scan(ctx context.Context, wanted map[netip.Addr]bool) (map[netip.Addr]providers.Location, error) {
	it := p.instances.AggregatedList(ctx, &computepb.AggregatedListInstancesRequest{Project: p.opts.Project,
		MaxResults: ptr(uint32(500))}, noRetry)
	where := map[netip.Addr]found{}
	for {
		pair, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, err
		}
		for _, inst := range pair.Value.GetInstances() {
			p.collect(inst, wanted, where)
		}
	}
	out := make(map[netip.Addr]providers.Location, len(where))
	for ip, f := range where {
		out[ip] = f.Location
	}
	return out, nil
}

// collect records where the wanted addresses of inst are. An IP seen in two networks (that reuse a range,
// when the search is not limited to one) is reported alone as in use, naming both places.
func (p *Provider) collect(inst *computepb.Instance, wanted map[netip.Addr]bool, where map[netip.Addr]found) {
	key := p.opts.Project + "/" + lastSegment(inst.GetZone()) + "/" + inst.GetName()
	for _, nic := range inst.NetworkInterfaces {
		network := lastSegment(nic.GetNetwork())
		if p.opts.Network != "" && network != p.opts.Network {
			continue
		}
		for ip, h := range holdings(nic, wanted) {
			f := found{Location: providers.Location{IP: ip, Instance: key, Interface: nic.GetName(), Primary: h.primary}, network: network}
			if !h.primary {
				f.InUse = notEgress(f, h.alias)
			}
			prev, dup := where[ip]
			if dup && prev.Instance == "" {
				continue // ambiguous already
			}
			if dup && prev.Instance+prev.Interface != f.Instance+f.Interface {
				f = found{Location: providers.Location{IP: ip, InUse: fmt.Sprintf(
					"%s is on %s (%s, network %s) and on %s (%s, network %s); egressgw cannot tell which is the cluster's: set the provider's network (--gcp-network)",
					ip, prev.Instance, prev.Interface, prev.network, key, f.Interface, network)}, network: prev.network}
			}
			where[ip] = f
		}
	}
}

// holding is how a NIC holds a wanted address: as its primary IP, or inside alias range alias.
type holding struct {
	primary bool
	alias   *computepb.AliasIpRange
}

// holdings are the wanted addresses nic holds.
func holdings(nic *computepb.NetworkInterface, wanted map[netip.Addr]bool) map[netip.Addr]holding {
	out := map[netip.Addr]holding{}
	if ip, err := netip.ParseAddr(nic.GetNetworkIP()); err == nil && wanted[ip] {
		out[ip] = holding{primary: true}
	}
	for _, r := range nic.AliasIpRanges {
		pf, ok := aliasPrefix(r)
		if !ok {
			continue
		}
		for ip := range wanted {
			if pf.Contains(ip) {
				out[ip] = holding{alias: r}
			}
		}
	}
	return out
}

// notEgress says why an alias range is not an egress IP egressgw added (which is a /32 of the
// subnetwork's primary range on nic0), or "" when it may be one.
func notEgress(f found, r *computepb.AliasIpRange) string {
	pf, _ := aliasPrefix(r)
	switch {
	case r.GetSubnetworkRangeName() != "":
		return fmt.Sprintf("%s lies in alias range %s from secondary range %q of %s on instance %s (a pod range), which egressgw does not manage",
			f.IP, pf, r.GetSubnetworkRangeName(), f.Interface, f.Instance)
	case pf.Bits() != 32:
		return fmt.Sprintf("%s lies in alias range %s of %s on instance %s, which another tool manages", f.IP, pf, f.Interface, f.Instance)
	case f.Interface != egressNIC:
		return fmt.Sprintf("%s is an alias of %s on instance %s, not of %s where egressgw puts egress IPs", f.IP, f.Interface, f.Instance, egressNIC)
	}
	return ""
}
