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
	err := p.assignAll(ctx, at, []netip.Addr{ip}, false)
	if err == nil {
		p.log.Info("assigned egress IP", "node", at.node, "instance", at.instance, "eni", at.eni, "ip", ip)
		return found{}, nil
	}
	// EC2 refuses an address held elsewhere with InvalidParameterValue, like any other bad value; look
	// again to tell the two apart (and to see our own earlier try that succeeded after all).
	if errors.Is(err, providers.ErrPermanent) {
		if was, done, lerr := p.placed(ctx, at, ip); done || errors.Is(lerr, providers.ErrAssignedElsewhere) || errors.Is(lerr, providers.ErrIPInUse) {
			return was, lerr
		}
	}
	return found{}, fmt.Errorf("assign %s to node %s (%s): %w", ip, at.node, at.eni, err)
}

// placed reports whether ip already is on at's ENI (with what Describe shows of it), or
// ErrAssignedElsewhere when another egressgw ENI holds it (ErrIPInUse as well when something else does).
func (p *Provider) placed(ctx context.Context, at attachment, ip netip.Addr) (found, bool, error) {
	f, ok, err := p.locateOne(ctx, at.vpc, ip)
	switch {
	case err != nil:
		return found{}, false, err
	case !ok:
		return found{}, false, nil
	case f.Interface == at.eni:
		return f, true, nil
	case f.InUse != "":
		return found{}, false, refuseInUse(f, providers.ErrAssignedElsewhere)
	}
	return found{}, false, fmt.Errorf("%s is on %s (instance %s), not on node %s: %w", ip, f.Interface, f.Instance, at.node, providers.ErrAssignedElsewhere)
}

// Move implements providers.Mover: one AssignPrivateIpAddresses call for all ips; EC2 moves their Elastic
// IPs with them. It reads first where the IPs are, and takes none held by an interface that is not
// egressgw's (ownership.go): AllowReassignment would take a pod's address from the CNI as readily as an
// egress IP from a failed gateway.
func (p *Provider) Move(ctx context.Context, node providers.Node, ips []netip.Addr) error {
	ips = slices.Compact(slices.SortedFunc(slices.Values(ips), netip.Addr.Compare))
	return p.onNode(ctx, node, func(ctx context.Context, at attachment) error {
		if err := checkAll(at, ips); err != nil || len(ips) == 0 {
			return err
		}
		return p.move(ctx, at, ips)
	})
}

// move reassigns only when another egressgw interface holds one of ips: IPs the read shows free go with
// AllowReassignment off, so that EC2 itself refuses one that something else took since the read. Such a
// refusal (or a read that lagged) is looked at once more before it counts.
//
// What the provider saw of the IPs within Options.LastSeenTTL (its own writes, the manager's steady-state
// Locate) stands in for the read, so that a failover is one call; a refusal is then read again too.
func (p *Provider) move(ctx context.Context, at attachment, ips []netip.Addr) error {
	reassign, known := p.knownTakeable(at, ips)
	if !known {
		var err error
		if reassign, err = p.takeable(ctx, at, ips); err != nil {
			return err
		}
	}
	err := p.assignAll(ctx, at, ips, reassign)
	if err != nil && (known || !reassign) && errors.Is(err, providers.ErrPermanent) {
		if again, err2 := p.takeable(ctx, at, ips); err2 != nil {
			return err2
		} else if again != reassign {
			err = p.assignAll(ctx, at, ips, again)
		}
	}
	if err != nil {
		return fmt.Errorf("move %v to node %s (%s): %w", ips, at.node, at.eni, err)
	}
	p.log.Info("moved egress IPs", "node", at.node, "instance", at.instance, "eni", at.eni, "ips", ips)
	return nil
}

// takeable reads where ips are and refuses, naming every one, those held by something that is not
// egressgw's; reassign says whether another egressgw interface holds any of them.
func (p *Provider) takeable(ctx context.Context, at attachment, ips []netip.Addr) (reassign bool, err error) {
	where, err := p.locate(ctx, []string{at.vpc}, ips)
	if err != nil {
		return false, err
	}
	var refused []error
	for _, ip := range ips {
		f, held := where[ip]
		switch {
		case !held || f.Interface == at.eni:
		case f.InUse != "":
			refused = append(refused, refuseInUse(f, providers.ErrPermanent))
		default:
			reassign = true
		}
	}
	if err := errors.Join(refused...); err != nil {
		return false, fmt.Errorf("move to node %s: %w", at.node, err)
	}
	return reassign, nil
}

func (p *Provider) assignAll(ctx context.Context, at attachment, ips []netip.Addr, reassign bool) error {
	_, err := call(ctx, p, "AssignPrivateIpAddresses", func(ctx context.Context) (*ec2.AssignPrivateIpAddressesOutput, error) {
		return p.ec2.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{
			NetworkInterfaceId: sdkaws.String(at.eni), PrivateIpAddresses: addrStrings(ips), AllowReassignment: sdkaws.Bool(reassign)})
	})
	if err != nil {
		p.forget(ips)
		return err
	}
	p.rememberOn(at, ips)
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
