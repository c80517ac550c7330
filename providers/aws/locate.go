package aws

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"

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

// Locate implements providers.Provider with filtered, paginated DescribeNetworkInterfaces calls.
func (p *Provider) Locate(ctx context.Context, ips []netip.Addr) (map[netip.Addr]providers.Location, error) {
	ctx, cancel := p.bound(ctx)
	defer cancel()
	where, err := p.locate(ctx, p.opts.VPCID, ips)
	if err != nil {
		return nil, err
	}
	out := make(map[netip.Addr]providers.Location, len(where))
	for ip, f := range where {
		out[ip] = f.Location
	}
	return out, nil
}

// locateOne finds ip within one VPC.
func (p *Provider) locateOne(ctx context.Context, vpc string, ip netip.Addr) (found, bool, error) {
	where, err := p.locate(ctx, vpc, []netip.Addr{ip})
	f, ok := where[ip]
	return f, ok, err
}

func (p *Provider) locate(ctx context.Context, vpc string, ips []netip.Addr) (map[netip.Addr]found, error) {
	wanted := map[string]netip.Addr{}
	for _, ip := range ips {
		if err := egressip.IPv4(ip, "AWS"); err != nil {
			return nil, fmt.Errorf("locate %w", err)
		}
		wanted[ip.String()] = ip
	}
	keys := slices.Sorted(maps.Keys(wanted))
	out := map[netip.Addr]found{}
	for chunk := range slices.Chunk(keys, locateChunk) {
		if err := p.locateChunk(ctx, vpc, chunk, wanted, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (p *Provider) locateChunk(ctx context.Context, vpc string, chunk []string, wanted map[string]netip.Addr, out map[netip.Addr]found) error {
	in := &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{filter("addresses.private-ip-address", chunk...)}, MaxResults: sdkaws.Int32(1000)}
	if vpc != "" {
		in.Filters = append(in.Filters, filter("vpc-id", vpc))
	}
	for {
		page, err := call(ctx, p, "DescribeNetworkInterfaces", func(ctx context.Context) (*ec2.DescribeNetworkInterfacesOutput, error) {
			return p.ec2.DescribeNetworkInterfaces(ctx, in)
		})
		if err != nil {
			return fmt.Errorf("locate IPs: %w", err)
		}
		for _, nic := range page.NetworkInterfaces {
			if err := collect(nic, wanted, out); err != nil {
				return err
			}
		}
		if sdkaws.ToString(page.NextToken) == "" {
			return nil
		}
		in.NextToken = page.NextToken
	}
}

// collect records where the wanted addresses of nic are, refusing an IP seen on two interfaces (two VPCs
// that reuse the range, when the search is not limited to one VPC).
func collect(nic types.NetworkInterface, wanted map[string]netip.Addr, out map[netip.Addr]found) error {
	for _, a := range nic.PrivateIpAddresses {
		ip, ok := wanted[sdkaws.ToString(a.PrivateIpAddress)]
		if !ok {
			continue
		}
		f := foundOn(nic, a, ip)
		if prev, dup := out[ip]; dup && prev.Interface != f.Interface {
			return fmt.Errorf("%s is on %s (%s) and on %s (%s): set the provider's VPC ID: %w", ip, prev.Interface, prev.vpc, f.Interface, f.vpc, providers.ErrPermanent)
		}
		out[ip] = f
	}
	return nil
}

func foundOn(nic types.NetworkInterface, a types.NetworkInterfacePrivateIpAddress, ip netip.Addr) found {
	f := found{Location: providers.Location{IP: ip, Interface: sdkaws.ToString(nic.NetworkInterfaceId), Primary: sdkaws.ToBool(a.Primary)},
		vpc: sdkaws.ToString(nic.VpcId)}
	if nic.Attachment != nil {
		f.Instance = sdkaws.ToString(nic.Attachment.InstanceId)
	}
	if as := a.Association; as != nil {
		f.PublicIP, _ = netip.ParseAddr(sdkaws.ToString(as.PublicIp))
		f.PublicIPID, f.associationID = sdkaws.ToString(as.AllocationId), sdkaws.ToString(as.AssociationId)
	}
	return f
}
