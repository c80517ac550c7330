package gcp

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"cloud.google.com/go/compute/apiv1/computepb"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/providers/internal/egressip"
)

// egressNIC is the interface that carries egress IPs: the first one, which GKE also uses for its pod
// range and which an instance keeps for its whole life.
const egressNIC = "nic0"

// attachment is where a node's egress IPs go. nic0 and its subnetwork never change for an instance, so it
// is cached; the NIC's alias ranges and fingerprint are read afresh before every write.
type attachment struct {
	node   string
	ref    instanceRef
	subnet subnet
}

// subnet is what the provider needs of a subnetwork; its ranges do not shrink while in use, so it is
// cached.
type subnet struct {
	id      string // projects/<p>/regions/<r>/subnetworks/<s>
	network string // name of the VPC network
	primary netip.Prefix
	// secondary are the named secondary ranges (GKE's pod and service ranges).
	secondary map[string]netip.Prefix
}

// check refuses an IP that cannot be an egress IP of this attachment: egress IPs come from the
// subnetwork's primary range, where the nodes' own addresses are.
func (a attachment) check(ip netip.Addr) error {
	if err := egressip.IPv4(ip, "GCP"); err != nil {
		return err
	}
	if a.subnet.primary.Contains(ip) {
		return nil
	}
	for name, r := range a.subnet.secondary {
		if r.Contains(ip) {
			return fmt.Errorf("%s is in secondary range %q (%s) of subnetwork %s, not in its primary range %s, where egress IPs of node %s come from: %w",
				ip, name, r, a.subnet.id, a.subnet.primary, a.node, providers.ErrOutsideSubnet)
		}
	}
	return fmt.Errorf("%s is not in subnetwork %s (%s) of node %s: %w", ip, a.subnet.id, a.subnet.primary, a.node, providers.ErrOutsideSubnet)
}

// DescribeNode implements providers.Provider. It reads the instance afresh (its alias ranges change) and
// the subnetwork only the first time.
func (p *Provider) DescribeNode(ctx context.Context, node providers.Node) (providers.NodeInfo, error) {
	ctx, cancel := p.bound(ctx)
	defer cancel()
	at, nic, err := p.resolve(ctx, node)
	if err != nil {
		return providers.NodeInfo{}, err
	}
	info := providers.NodeInfo{Instance: at.ref.key(), Interface: egressNIC, Zone: at.ref.zone, SubnetID: at.subnet.id,
		Subnet: at.subnet.primary, Capacity: capacity(p.opts.AliasRangesPerInterface, nic.AliasIpRanges)}
	if ip, err := netip.ParseAddr(nic.GetNetworkIP()); err == nil {
		info.Addresses = append(info.Addresses, ip)
	}
	for _, r := range nic.AliasIpRanges {
		if pf, ok := aliasPrefix(r); ok && pf.Bits() == 32 {
			info.Addresses = append(info.Addresses, pf.Addr())
		}
	}
	return info, nil
}

// attachment returns the cached attachment of node, resolving it on first use; concurrent first uses
// share one resolution.
func (p *Provider) attachment(ctx context.Context, node providers.Node) (attachment, error) {
	ref, err := parseProviderID(node.ProviderID)
	if err != nil {
		return attachment{}, err
	}
	p.mu.Lock()
	at, ok := p.nodes[ref.key()]
	p.mu.Unlock()
	if !ok {
		v, err, _ := p.resolving.Do(ref.key(), func() (any, error) {
			at, _, err := p.resolve(ctx, node)
			return at, err
		})
		if err != nil {
			return attachment{}, err
		}
		at = v.(attachment)
	}
	at.node = node.Name
	return at, nil
}

// resolve reads node's instance and nic0, and caches the attachment.
func (p *Provider) resolve(ctx context.Context, node providers.Node) (attachment, *computepb.NetworkInterface, error) {
	ref, err := parseProviderID(node.ProviderID)
	if err != nil {
		return attachment{}, nil, err
	}
	at := attachment{node: node.Name, ref: ref}
	nic, err := p.readNIC(ctx, at)
	if err != nil {
		return attachment{}, nil, err
	}
	if at.subnet, err = p.subnetwork(ctx, nic.GetSubnetwork()); err != nil {
		return attachment{}, nil, fmt.Errorf("node %s: %w", node.Name, err)
	}
	p.mu.Lock()
	p.nodes[ref.key()] = at
	p.mu.Unlock()
	return at, nic, nil
}

// readNIC reads the instance and returns its nic0 with the current alias ranges and fingerprint.
func (p *Provider) readNIC(ctx context.Context, at attachment) (*computepb.NetworkInterface, error) {
	inst, err := call(ctx, p, groupRead, "instances.get", func(ctx context.Context) (*computepb.Instance, error) {
		return p.instances.Get(ctx, &computepb.GetInstanceRequest{Project: at.ref.project, Zone: at.ref.zone, Instance: at.ref.name}, noRetry)
	})
	if err != nil {
		return nil, fmt.Errorf("node %s (instance %s): %w", at.node, at.ref.key(), err)
	}
	for _, nic := range inst.NetworkInterfaces {
		if nic.GetName() == egressNIC {
			return nic, nil
		}
	}
	return nil, fmt.Errorf("node %s: instance %s has no %s: %w", at.node, at.ref.key(), egressNIC, providers.ErrNotFound)
}

// subnetwork reads (once) the subnetwork a NIC names by URL.
func (p *Provider) subnetwork(ctx context.Context, url string) (subnet, error) {
	p.mu.Lock()
	sn, ok := p.subnetsBy[url]
	p.mu.Unlock()
	if ok {
		return sn, nil
	}
	project, region, name, err := parseSubnetURL(url)
	if err != nil {
		return subnet{}, err
	}
	out, err := call(ctx, p, groupRead, "subnetworks.get", func(ctx context.Context) (*computepb.Subnetwork, error) {
		return p.subnets.Get(ctx, &computepb.GetSubnetworkRequest{Project: project, Region: region, Subnetwork: name}, noRetry)
	})
	if err != nil {
		return subnet{}, fmt.Errorf("subnetwork %s: %w", name, err)
	}
	if sn, err = toSubnet(out, fmt.Sprintf("projects/%s/regions/%s/subnetworks/%s", project, region, name)); err != nil {
		return subnet{}, err
	}
	p.mu.Lock()
	p.subnetsBy[url] = sn
	p.mu.Unlock()
	return sn, nil
}

func toSubnet(out *computepb.Subnetwork, id string) (subnet, error) {
	primary, err := netip.ParsePrefix(out.GetIpCidrRange())
	if err != nil {
		return subnet{}, fmt.Errorf("subnetwork %s has range %q: %w", id, out.GetIpCidrRange(), providers.ErrPermanent)
	}
	sn := subnet{id: id, network: lastSegment(out.GetNetwork()), primary: primary, secondary: map[string]netip.Prefix{}}
	for _, r := range out.SecondaryIpRanges {
		if pf, err := netip.ParsePrefix(r.GetIpCidrRange()); err == nil {
			sn.secondary[r.GetRangeName()] = pf
		}
	}
	return sn, nil
}

// parseSubnetURL reads .../projects/<p>/regions/<r>/subnetworks/<s>.
func parseSubnetURL(url string) (project, region, name string, err error) {
	i := strings.Index(url, "projects/")
	parts := strings.Split(url[max(i, 0):], "/")
	if i < 0 || len(parts) != 6 || parts[2] != "regions" || parts[4] != "subnetworks" {
		return "", "", "", fmt.Errorf("nic0 names subnetwork %q, not .../projects/P/regions/R/subnetworks/S: %w", url, providers.ErrPermanent)
	}
	return parts[1], parts[3], parts[5], nil
}
