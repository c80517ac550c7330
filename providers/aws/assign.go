package aws

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/egressgw/egressgw/providers"
)

// Assign implements providers.Provider: the IP first (never taken from another ENI), then its Elastic IP.
// A missing Elastic IP is found before anything changes. An Assignment without a public IP leaves the IP
// without one: an Elastic IP still associated with it (the spec named one before) is disassociated.
func (p *Provider) Assign(ctx context.Context, node providers.Node, a providers.Assignment) error {
	return p.onNode(ctx, node, func(ctx context.Context, at attachment) error {
		if err := at.check(a.IP); err != nil {
			return err
		}
		var eip *types.Address
		if a.PublicIP != "" {
			var err error
			if eip, err = p.elasticIP(ctx, a.PublicIP); err != nil {
				return err
			}
		}
		was, err := p.ensurePrivate(ctx, at, a.IP)
		switch {
		case err != nil:
			return err
		case eip != nil:
			return p.associate(ctx, at, a, *eip)
		case was.associationID != "":
			return p.disassociateIfHere(ctx, at, a.IP, was.associationID)
		}
		return nil
	})
}

// ensurePrivate puts ip on at's ENI unless it is there already (then it returns what Describe shows of
// it); it refuses when another ENI holds it.
func (p *Provider) ensurePrivate(ctx context.Context, at attachment, ip netip.Addr) (found, error) {
	if was, done, err := p.placed(ctx, at, ip); done || err != nil {
		return was, err
	}
	_, err := call(ctx, p, "AssignPrivateIpAddresses", func(ctx context.Context) (*ec2.AssignPrivateIpAddressesOutput, error) {
		return p.ec2.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{
			NetworkInterfaceId: sdkaws.String(at.eni), PrivateIpAddresses: []string{ip.String()}, AllowReassignment: sdkaws.Bool(false)})
	})
	if err == nil {
		p.log.Info("assigned egress IP", "node", at.node, "instance", at.instance, "eni", at.eni, "ip", ip)
		return found{}, nil
	}
	// EC2 refuses an address held elsewhere with InvalidParameterValue, like any other bad value; look
	// again to tell the two apart (and to see our own earlier try that succeeded after all).
	if errors.Is(err, providers.ErrPermanent) {
		if was, done, lerr := p.placed(ctx, at, ip); done || lerr != nil && errors.Is(lerr, providers.ErrAssignedElsewhere) {
			return was, lerr
		}
	}
	return found{}, fmt.Errorf("assign %s to node %s (%s): %w", ip, at.node, at.eni, err)
}

// placed reports whether ip already is on at's ENI (with what Describe shows of it), or
// ErrAssignedElsewhere when another ENI holds it.
func (p *Provider) placed(ctx context.Context, at attachment, ip netip.Addr) (found, bool, error) {
	f, ok, err := p.locateOne(ctx, at.vpc, ip)
	switch {
	case err != nil:
		return found{}, false, err
	case !ok:
		return found{}, false, nil
	case f.Interface == at.eni:
		return f, true, nil
	case f.Primary:
		return found{}, false, fmt.Errorf("%s is the primary address of %s (instance %s), not an egress IP: %w", ip, f.Interface, f.Instance, providers.ErrAssignedElsewhere)
	}
	return found{}, false, fmt.Errorf("%s is on %s (instance %s), not on node %s: %w", ip, f.Interface, f.Instance, at.node, providers.ErrAssignedElsewhere)
}

// Move implements providers.Mover: one AssignPrivateIpAddresses call with AllowReassignment for all ips;
// EC2 moves their Elastic IPs with them.
func (p *Provider) Move(ctx context.Context, node providers.Node, ips []netip.Addr) error {
	ips = slices.Compact(slices.SortedFunc(slices.Values(ips), netip.Addr.Compare))
	return p.onNode(ctx, node, func(ctx context.Context, at attachment) error {
		if err := checkAll(at, ips); err != nil || len(ips) == 0 {
			return err
		}
		return p.move(ctx, at, ips)
	})
}

func (p *Provider) move(ctx context.Context, at attachment, ips []netip.Addr) error {
	_, err := call(ctx, p, "AssignPrivateIpAddresses", func(ctx context.Context) (*ec2.AssignPrivateIpAddressesOutput, error) {
		return p.ec2.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{
			NetworkInterfaceId: sdkaws.String(at.eni), PrivateIpAddresses: addrStrings(ips), AllowReassignment: sdkaws.Bool(true)})
	})
	if err != nil {
		return fmt.Errorf("move %v to node %s (%s): %w", ips, at.node, at.eni, err)
	}
	p.log.Info("moved egress IPs", "node", at.node, "instance", at.instance, "eni", at.eni, "ips", ips)
	return nil
}

// checkAll refuses a batch naming every IP that cannot go to at, so one answer fixes them all.
func checkAll(at attachment, ips []netip.Addr) error {
	var errs []error
	for _, ip := range ips {
		errs = append(errs, at.check(ip))
	}
	return errors.Join(errs...)
}

func addrStrings(ips []netip.Addr) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}
