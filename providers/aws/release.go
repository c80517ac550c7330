package aws

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/egressgw/egressgw/providers"
)

// Release implements providers.Provider. Its only mutating calls name this node's ENI, or an Elastic IP
// association EC2 shows on this node's ENI, so it never takes anything from another node. It unassigns
// even when Describe does not show the IP here: Describe may lag a recent assignment (EC2's eventual
// consistency), and EC2 itself refuses what is not there.
func (p *Provider) Release(ctx context.Context, node providers.Node, a providers.Assignment) error {
	return p.onNode(ctx, node, func(ctx context.Context, at attachment) error {
		if !a.IP.Is4() || !at.subnet.Contains(a.IP) {
			return nil // EC2 cannot have it on this node
		}
		return p.release(ctx, at, a.IP)
	})
}

// release unassigns first and only then looks at the Elastic IP: a read that lags may show on this ENI an
// association that has since followed the IP to another node, and disassociating it by its ID would take
// the Elastic IP off that node. EC2's answer to the unassign is the truth about who holds the IP, and EC2
// drops the address's association with it.
func (p *Provider) release(ctx context.Context, at attachment, ip netip.Addr) error {
	f, ok, err := p.locateOne(ctx, at.vpc, ip)
	if err != nil {
		return err
	}
	seenHere := ok && f.Interface == at.eni
	if seenHere && f.Primary {
		return fmt.Errorf("%s is the primary address of node %s (%s) and cannot be released: %w", ip, at.node, at.eni, providers.ErrPermanent)
	}
	released, err := p.unassign(ctx, at, ip)
	if err != nil || !released || !seenHere || f.associationID == "" {
		return err
	}
	return p.disassociateIfHere(ctx, at, ip, f.associationID)
}

// unassign removes ip from at's ENI; released is false when EC2 refused because the IP is not there.
func (p *Provider) unassign(ctx context.Context, at attachment, ip netip.Addr) (released bool, err error) {
	_, err = call(ctx, p, "UnassignPrivateIpAddresses", func(ctx context.Context) (*ec2.UnassignPrivateIpAddressesOutput, error) {
		return p.ec2.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{
			NetworkInterfaceId: sdkaws.String(at.eni), PrivateIpAddresses: []string{ip.String()}})
	})
	if err != nil {
		// A refusal may only mean the IP is not here (never was, left already, or our own earlier try
		// succeeded after all): look again before calling it a failure.
		if !errors.Is(err, providers.ErrPermanent) {
			return false, fmt.Errorf("release %s from node %s (%s): %w", ip, at.node, at.eni, err)
		}
		if f, ok, lerr := p.locateOne(ctx, at.vpc, ip); lerr == nil && (!ok || f.Interface != at.eni) {
			return false, nil
		}
		return false, fmt.Errorf("release %s from node %s (%s): %w", ip, at.node, at.eni, err)
	}
	p.remember(ip, found{}, false, time.Now())
	p.log.Info("released egress IP", "node", at.node, "instance", at.instance, "eni", at.eni, "ip", ip)
	return true, nil
}
