package aws

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/providers/internal/lockedmap"
)

// subnetInfo is what the provider needs of a subnet; none of it ever changes.
type subnetInfo struct {
	id, vpc, zone string
	cidr          netip.Prefix
}

// subnet reads a subnet once.
func (p *Provider) subnet(ctx context.Context, id string) (subnetInfo, error) {
	if sn, ok := lockedmap.Get(&p.mu, p.subnets, id); ok {
		return sn, nil
	}
	found, err := p.describeSubnets(ctx, filter("subnet-id", id))
	if err != nil {
		return subnetInfo{}, fmt.Errorf("subnet %s: %w", id, err)
	}
	if len(found) == 0 {
		return subnetInfo{}, fmt.Errorf("subnet %s: %w", id, providers.ErrNotFound)
	}
	return found[0], nil
}

// describeSubnets reads the subnets matching filters, and caches each.
func (p *Provider) describeSubnets(ctx context.Context, filters ...types.Filter) ([]subnetInfo, error) {
	out, err := call(ctx, p, "DescribeSubnets", func(ctx context.Context) (*ec2.DescribeSubnetsOutput, error) {
		return p.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: filters})
	})
	if err != nil {
		return nil, err
	}
	var found []subnetInfo
	for _, s := range out.Subnets {
		sn := subnetInfo{id: sdkaws.ToString(s.SubnetId), vpc: sdkaws.ToString(s.VpcId), zone: sdkaws.ToString(s.AvailabilityZone)}
		cidr, err := netip.ParsePrefix(sdkaws.ToString(s.CidrBlock))
		if err != nil {
			return nil, fmt.Errorf("subnet %s has CIDR %q: %w", sn.id, sdkaws.ToString(s.CidrBlock), providers.ErrPermanent)
		}
		sn.cidr = cidr
		lockedmap.Put(&p.mu, p.subnets, sn.id, sn)
		found = append(found, sn)
	}
	slices.SortFunc(found, func(a, b subnetInfo) int { return strings.Compare(a.id, b.id) })
	return found, nil
}

// egressSubnet is the subnet in which the gateway's dedicated interface is created: the one named for its
// zone, else the one the tags select in its VPC and zone, else the subnet of its primary interface.
func (p *Provider) egressSubnet(ctx context.Context, node, zone string, primary nicView) (string, error) {
	if id, ok := p.opts.EgressSubnets[zone]; ok {
		sn, err := p.subnet(ctx, id)
		if err != nil {
			return "", fmt.Errorf("egress subnet of zone %s: %w", zone, err)
		}
		if sn.zone != zone || sn.vpc != primary.vpc {
			return "", fmt.Errorf("egress subnet %s named for zone %s is in zone %s of %s, but node %s is in %s of %s: name a subnet of the node's VPC and zone: %w",
				id, zone, sn.zone, sn.vpc, node, zone, primary.vpc, providers.ErrPermanent)
		}
		return id, nil
	}
	if len(p.opts.EgressSubnetTags) == 0 {
		return primary.subnetID, nil
	}
	return p.taggedSubnet(ctx, zone, primary.vpc)
}

func (p *Provider) taggedSubnet(ctx context.Context, zone, vpc string) (string, error) {
	key := vpc + "/" + zone
	if id, ok := lockedmap.Get(&p.mu, p.zoneNets, key); ok {
		return id, nil
	}
	filters := []types.Filter{filter("vpc-id", vpc), filter("availability-zone", zone)}
	for _, k := range slices.Sorted(maps.Keys(p.opts.EgressSubnetTags)) {
		filters = append(filters, filter("tag:"+k, p.opts.EgressSubnetTags[k]))
	}
	found, err := p.describeSubnets(ctx, filters...)
	if err != nil {
		return "", fmt.Errorf("egress subnet of zone %s: %w", zone, err)
	}
	if len(found) == 0 {
		return "", fmt.Errorf("no subnet of %s in zone %s carries the egress subnet tags %v: tag one, or name it per zone: %w",
			vpc, zone, p.opts.EgressSubnetTags, providers.ErrPermanent)
	}
	if len(found) > 1 {
		p.log.Warn("several subnets carry the egress subnet tags; using the lowest ID", "zone", zone, "vpc", vpc, "subnet", found[0].id, "candidates", len(found))
	}
	lockedmap.Put(&p.mu, p.zoneNets, key, found[0].id)
	return found[0].id, nil
}

// reservedByAWS names the role of ip when it is one of the five addresses AWS reserves in every subnet
// of cidr ("" otherwise): the network address, the VPC router (+1), the DNS server (+2), one for future
// use (+3), and the last address (broadcast, which a VPC does not support).
func reservedByAWS(ip netip.Addr, cidr netip.Prefix) string {
	first := cidr.Masked().Addr()
	for _, role := range []string{"the network address", "the VPC router's address", "the DNS server's address", "an address for future use"} {
		if ip == first {
			return role
		}
		first = first.Next()
	}
	if ip == lastOf(cidr) {
		return "the broadcast address"
	}
	return ""
}

// lastOf is the highest address of p.
func lastOf(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	return netip.AddrFrom4(b)
}

// nicView is the part of an ENI the provider uses, from DescribeInstances or DescribeNetworkInterfaces.
type nicView struct {
	id, subnetID, vpc, mac, attachmentID string
	instance                             string
	device                               int
	deleteOnTermination                  bool
	groups                               []string
	addrs                                []netip.Addr // primary first
	prefixes                             []netip.Prefix
	tags                                 map[string]string
}

func viewOfInstanceNIC(n types.InstanceNetworkInterface) nicView {
	v := nicView{id: sdkaws.ToString(n.NetworkInterfaceId), subnetID: sdkaws.ToString(n.SubnetId), vpc: sdkaws.ToString(n.VpcId),
		mac: sdkaws.ToString(n.MacAddress)}
	if a := n.Attachment; a != nil {
		v.attachmentID, v.device, v.deleteOnTermination = sdkaws.ToString(a.AttachmentId), int(sdkaws.ToInt32(a.DeviceIndex)), sdkaws.ToBool(a.DeleteOnTermination)
	}
	for _, g := range n.Groups {
		v.groups = append(v.groups, sdkaws.ToString(g.GroupId))
	}
	for _, a := range n.PrivateIpAddresses {
		v.addAddr(sdkaws.ToString(a.PrivateIpAddress), sdkaws.ToBool(a.Primary))
	}
	for _, pr := range n.Ipv4Prefixes {
		v.addPrefix(sdkaws.ToString(pr.Ipv4Prefix))
	}
	return v
}

func viewOfENI(n types.NetworkInterface) nicView {
	v := nicView{id: sdkaws.ToString(n.NetworkInterfaceId), subnetID: sdkaws.ToString(n.SubnetId), vpc: sdkaws.ToString(n.VpcId),
		mac: sdkaws.ToString(n.MacAddress), tags: map[string]string{}}
	if a := n.Attachment; a != nil {
		v.attachmentID, v.device, v.deleteOnTermination = sdkaws.ToString(a.AttachmentId), int(sdkaws.ToInt32(a.DeviceIndex)), sdkaws.ToBool(a.DeleteOnTermination)
		v.instance = sdkaws.ToString(a.InstanceId)
	}
	for _, g := range n.Groups {
		v.groups = append(v.groups, sdkaws.ToString(g.GroupId))
	}
	for _, t := range n.TagSet {
		v.tags[sdkaws.ToString(t.Key)] = sdkaws.ToString(t.Value)
	}
	for _, a := range n.PrivateIpAddresses {
		v.addAddr(sdkaws.ToString(a.PrivateIpAddress), sdkaws.ToBool(a.Primary))
	}
	for _, pr := range n.Ipv4Prefixes {
		v.addPrefix(sdkaws.ToString(pr.Ipv4Prefix))
	}
	return v
}

// addAddr keeps the primary address first, whatever order EC2 lists them in.
func (v *nicView) addAddr(raw string, primary bool) {
	ip, err := netip.ParseAddr(raw)
	if err != nil {
		return
	}
	if primary {
		v.addrs = append([]netip.Addr{ip}, v.addrs...)
		return
	}
	v.addrs = append(v.addrs, ip)
}

func (v *nicView) addPrefix(raw string) {
	if pr, err := netip.ParsePrefix(raw); err == nil {
		v.prefixes = append(v.prefixes, pr)
	}
}

// secondaries counts what the interface holds besides its own primary address.
func (v nicView) secondaries() int { return max(0, len(v.addrs)-1) + len(v.prefixes) }
