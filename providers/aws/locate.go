package aws

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/providers/internal/egressip"
)

// locateChunk keeps each DescribeNetworkInterfaces request well inside EC2's limit on filter values.
const locateChunk = 200

// found is a Location plus what Release needs to undo an Elastic IP association.
type found struct {
	providers.Location
	vpc, associationID string
}

// Locate implements providers.Provider with filtered, paginated DescribeNetworkInterfaces calls, in the
// cluster's VPCs (see clusterVPCs).
func (p *Provider) Locate(ctx context.Context, ips []netip.Addr) (map[netip.Addr]providers.Location, error) {
	ctx, cancel := p.bound(ctx)
	defer cancel()
	where, err := p.locate(ctx, p.clusterVPCs(), ips)
	if err != nil {
		return nil, err
	}
	out := make(map[netip.Addr]providers.Location, len(where))
	for ip, f := range where {
		out[ip] = f.Location
	}
	return out, nil
}

// clusterVPCs are the VPCs Locate searches: the configured one (Options.VPCID), else those of the nodes
// this provider has resolved, which are the cluster's (the manager describes every gateway before its
// first Locate). Empty, before any node is known, means every VPC the credentials see; an IP found in
// two of them is then reported alone as ambiguous.
func (p *Provider) clusterVPCs() []string {
	if p.opts.VPCID != "" {
		return []string{p.opts.VPCID}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var vpcs []string
	for _, at := range p.nodes {
		if at.vpc != "" && !slices.Contains(vpcs, at.vpc) {
			vpcs = append(vpcs, at.vpc)
		}
	}
	slices.Sort(vpcs)
	return vpcs
}

// locateOne finds ip within one VPC.
func (p *Provider) locateOne(ctx context.Context, vpc string, ip netip.Addr) (found, bool, error) {
	where, err := p.locate(ctx, []string{vpc}, []netip.Addr{ip})
	f, ok := where[ip]
	return f, ok, err
}

// locate finds ips in vpcs (all VPCs when empty).
func (p *Provider) locate(ctx context.Context, vpcs []string, ips []netip.Addr) (map[netip.Addr]found, error) {
	wanted := map[string]netip.Addr{}
	for _, ip := range ips {
		if err := egressip.IPv4(ip, "AWS"); err != nil {
			return nil, fmt.Errorf("locate %w", err)
		}
		wanted[ip.String()] = ip
	}
	keys := slices.Sorted(maps.Keys(wanted))
	seen := map[netip.Addr][]found{}
	sent := time.Now()
	for chunk := range slices.Chunk(keys, locateChunk) {
		if err := p.describeChunk(ctx, vpcs, chunk, wanted, seen); err != nil {
			return nil, err
		}
	}
	out := make(map[netip.Addr]found, len(seen))
	for ip, holders := range seen {
		out[ip] = oneHolder(ip, holders)
	}
	for _, ip := range wanted {
		f, held := out[ip]
		p.remember(ip, f, held, sent)
	}
	return out, nil
}

// describeChunk reads the interfaces holding any address of chunk, page by page, and records each
// interface that holds a wanted address.
func (p *Provider) describeChunk(ctx context.Context, vpcs, chunk []string, wanted map[string]netip.Addr, seen map[netip.Addr][]found) error {
	in := &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{filter("addresses.private-ip-address", chunk...)}, MaxResults: sdkaws.Int32(1000)}
	if len(vpcs) > 0 {
		in.Filters = append(in.Filters, filter("vpc-id", vpcs...))
	}
	for {
		page, err := call(ctx, p, "DescribeNetworkInterfaces", func(ctx context.Context) (*ec2.DescribeNetworkInterfacesOutput, error) {
			return p.ec2.DescribeNetworkInterfaces(ctx, in)
		})
		if err != nil {
			return fmt.Errorf("locate IPs: %w", err)
		}
		for _, nic := range page.NetworkInterfaces {
			for _, a := range nic.PrivateIpAddresses {
				if ip, ok := wanted[sdkaws.ToString(a.PrivateIpAddress)]; ok {
					seen[ip] = append(seen[ip], p.foundOn(nic, a, ip))
				}
			}
		}
		if sdkaws.ToString(page.NextToken) == "" {
			return nil
		}
		in.NextToken = page.NextToken
	}
}

// oneHolder is where ip is, given every interface seen holding it. Within one VPC there is at most one;
// an IP on interfaces of two VPCs (that reuse the range, when the search is not limited to one) is
// reported as in use, with advice, so that it alone waits and the other IPs are answered.
func oneHolder(ip netip.Addr, holders []found) found {
	f := holders[0]
	for _, other := range holders[1:] {
		if other.Interface != f.Interface {
			return found{Location: providers.Location{IP: ip, InUse: fmt.Sprintf(
				"%s is on %s (%s) and on %s (%s), and egressgw cannot tell which VPC is the cluster's: set the provider's VPC ID (--aws-vpc-id)",
				ip, f.Interface, f.vpc, other.Interface, other.vpc)}}
		}
	}
	return f
}

func (p *Provider) foundOn(nic types.NetworkInterface, a types.NetworkInterfacePrivateIpAddress, ip netip.Addr) found {
	f := found{Location: providers.Location{IP: ip, Interface: sdkaws.ToString(nic.NetworkInterfaceId), Primary: sdkaws.ToBool(a.Primary)},
		vpc: sdkaws.ToString(nic.VpcId)}
	if nic.Attachment != nil {
		f.Instance = sdkaws.ToString(nic.Attachment.InstanceId)
	}
	if as := a.Association; as != nil {
		f.PublicIP, _ = netip.ParseAddr(sdkaws.ToString(as.PublicIp))
		f.PublicIPID, f.associationID = sdkaws.ToString(as.AllocationId), sdkaws.ToString(as.AssociationId)
	}
	f.InUse = p.notEgress(nic, f)
	return f
}
