package aws

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/egressgw/egressgw/providers"
)

// associate points Elastic IP addr (a.PublicIP) at a.IP on at's ENI unless it is so already. An Elastic
// IP associated elsewhere is taken over: the gateway's spec names it for this egress IP.
func (p *Provider) associate(ctx context.Context, at attachment, a providers.Assignment, addr types.Address) error {
	if sdkaws.ToString(addr.NetworkInterfaceId) == at.eni && sdkaws.ToString(addr.PrivateIpAddress) == a.IP.String() {
		return nil
	}
	_, err := call(ctx, p, "AssociateAddress", func(ctx context.Context) (*ec2.AssociateAddressOutput, error) {
		return p.ec2.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: sdkaws.String(a.PublicIP),
			NetworkInterfaceId: sdkaws.String(at.eni), PrivateIpAddress: sdkaws.String(a.IP.String()), AllowReassociation: sdkaws.Bool(true)})
	})
	if err != nil {
		return fmt.Errorf("associate %s with %s on node %s: %w", a.PublicIP, a.IP, at.node, err)
	}
	p.log.Info("associated Elastic IP", "node", at.node, "eni", at.eni, "ip", a.IP, "allocation", a.PublicIP,
		"publicIP", sdkaws.ToString(addr.PublicIp), "previousENI", sdkaws.ToString(addr.NetworkInterfaceId))
	return nil
}

// elasticIP reads the Elastic IP with this allocation ID.
func (p *Provider) elasticIP(ctx context.Context, allocationID string) (*types.Address, error) {
	if !strings.HasPrefix(allocationID, "eipalloc-") {
		return nil, fmt.Errorf("public IP %q: on AWS this is an Elastic IP allocation ID (eipalloc-...): %w", allocationID, providers.ErrPermanent)
	}
	out, err := call(ctx, p, "DescribeAddresses", func(ctx context.Context) (*ec2.DescribeAddressesOutput, error) {
		return p.ec2.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{Filters: []types.Filter{filter("allocation-id", allocationID)}})
	})
	if err != nil {
		return nil, fmt.Errorf("Elastic IP %s: %w", allocationID, err)
	}
	if len(out.Addresses) == 0 {
		return nil, fmt.Errorf("Elastic IP %s: %w", allocationID, providers.ErrNotFound)
	}
	return &out.Addresses[0], nil
}

// disassociateIfHere removes Elastic IP association assoc only while EC2 shows it on at's ENI at ip: an
// association ID names the association wherever it has gone since (it follows its private IP to another
// ENI), so disassociating by ID alone could take an Elastic IP off another node. An association that is
// gone already is fine.
func (p *Provider) disassociateIfHere(ctx context.Context, at attachment, ip netip.Addr, assoc string) error {
	out, err := call(ctx, p, "DescribeAddresses", func(ctx context.Context) (*ec2.DescribeAddressesOutput, error) {
		return p.ec2.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{Filters: []types.Filter{filter("association-id", assoc)}})
	})
	if err != nil {
		return fmt.Errorf("Elastic IP association %s of %s on node %s: %w", assoc, ip, at.node, err)
	}
	for _, addr := range out.Addresses {
		if sdkaws.ToString(addr.NetworkInterfaceId) == at.eni && sdkaws.ToString(addr.PrivateIpAddress) == ip.String() {
			return p.disassociate(ctx, at, ip, assoc, sdkaws.ToString(addr.AllocationId))
		}
	}
	return nil
}

// disassociate removes association assoc (of Elastic IP alloc) from ip on at's ENI; the caller made sure
// it is there.
func (p *Provider) disassociate(ctx context.Context, at attachment, ip netip.Addr, assoc, alloc string) error {
	_, err := call(ctx, p, "DisassociateAddress", func(ctx context.Context) (*ec2.DisassociateAddressOutput, error) {
		return p.ec2.DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: sdkaws.String(assoc)})
	})
	if err != nil && !hasCode(err, codeAssociationNotFound) {
		return fmt.Errorf("disassociate %s from %s on node %s: %w", alloc, ip, at.node, err)
	}
	if err == nil {
		p.log.Info("disassociated Elastic IP", "node", at.node, "eni", at.eni, "ip", ip, "allocation", alloc)
	}
	return nil
}
