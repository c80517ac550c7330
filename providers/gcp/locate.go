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
// them all and looks at every NIC's primary IP and alias ranges. An IP inside a wider alias range (a pod
// range) is reported on that NIC too, as not primary.
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
			if err := p.collect(inst, wanted, where); err != nil {
				return nil, err
			}
		}
	}
	out := make(map[netip.Addr]providers.Location, len(where))
	for ip, f := range where {
		out[ip] = f.Location
	}
	return out, nil
}

// collect records where the wanted addresses of inst are, refusing an IP seen in two networks when the
// search is not limited to one.
func (p *Provider) collect(inst *computepb.Instance, wanted map[netip.Addr]bool, where map[netip.Addr]found) error {
	key := p.opts.Project + "/" + lastSegment(inst.GetZone()) + "/" + inst.GetName()
	for _, nic := range inst.NetworkInterfaces {
		network := lastSegment(nic.GetNetwork())
		if p.opts.Network != "" && network != p.opts.Network {
			continue
		}
		for ip, primary := range holdings(nic, wanted) {
			f := found{Location: providers.Location{IP: ip, Instance: key, Interface: nic.GetName(), Primary: primary}, network: network}
			if prev, dup := where[ip]; dup && prev.Instance+prev.Interface != f.Instance+f.Interface {
				return fmt.Errorf("%s is on %s (%s, network %s) and on %s (%s, network %s): set the provider's network: %w",
					ip, prev.Instance, prev.Interface, prev.network, f.Instance, f.Interface, f.network, providers.ErrPermanent)
			}
			where[ip] = f
		}
	}
	return nil
}

// holdings are the wanted addresses nic holds, each with whether it is the NIC's primary IP.
func holdings(nic *computepb.NetworkInterface, wanted map[netip.Addr]bool) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	if ip, err := netip.ParseAddr(nic.GetNetworkIP()); err == nil && wanted[ip] {
		out[ip] = true
	}
	for _, r := range nic.AliasIpRanges {
		pf, ok := aliasPrefix(r)
		if !ok {
			continue
		}
		for ip := range wanted {
			if pf.Contains(ip) {
				out[ip] = false
			}
		}
	}
	return out
}
