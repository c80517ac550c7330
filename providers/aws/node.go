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

// attachment is where a node's egress IPs go. An instance's primary ENI (device index 0) cannot be
// detached, so this stays true for the instance's whole life and is cached: a failover then costs one
// EC2 call.
type attachment struct {
	node                               string
	instance, eni, subnetID, vpc, zone string
	subnet                             netip.Prefix
	capacity                           int
}

// check refuses an IP that EC2 could never put on this attachment.
func (a attachment) check(ip netip.Addr) error {
	if !ip.Is4() {
		return fmt.Errorf("%s: egress IPs on AWS are IPv4 addresses: %w", ip, providers.ErrPermanent)
	}
	if !a.subnet.Contains(ip) {
		return fmt.Errorf("%s is not in subnet %s (%s) of node %s: %w", ip, a.subnetID, a.subnet, a.node, providers.ErrOutsideSubnet)
	}
	return nil
}

// DescribeNode implements providers.Provider. It reads the instance afresh (its addresses change), and
// the subnet and instance type only the first time they are seen.
func (p *Provider) DescribeNode(ctx context.Context, node providers.Node) (providers.NodeInfo, error) {
	ctx, cancel := p.bound(ctx)
	defer cancel()
	at, nic, err := p.resolve(ctx, node)
	if err != nil {
		return providers.NodeInfo{}, err
	}
	info := providers.NodeInfo{Instance: at.instance, Interface: at.eni, Zone: at.zone, SubnetID: at.subnetID,
		Subnet: at.subnet, Capacity: at.capacity}
	for _, a := range nic.PrivateIpAddresses {
		if ip, err := netip.ParseAddr(sdkaws.ToString(a.PrivateIpAddress)); err == nil {
			info.Addresses = append(info.Addresses, ip)
		}
	}
	return info, nil
}

// attachment returns the cached attachment of node, resolving it on first use. Concurrent first uses
// share one resolution: a new leader's first failover burst must not spend the Describe bucket on the
// same few gateways.
func (p *Provider) attachment(ctx context.Context, node providers.Node) (attachment, error) {
	ref, err := parseProviderID(node.ProviderID)
	if err != nil {
		return attachment{}, err
	}
	if at, ok := cached(p, p.nodes, ref.id); ok {
		at.node = node.Name
		return at, nil
	}
	v, err, _ := p.resolving.Do(ref.id, func() (any, error) {
		at, _, err := p.resolve(ctx, node)
		return at, err
	})
	if err != nil {
		return attachment{}, err
	}
	at := v.(attachment)
	at.node = node.Name
	return at, nil
}

// resolve asks EC2 for node's instance and primary ENI and caches the attachment.
func (p *Provider) resolve(ctx context.Context, node providers.Node) (attachment, types.InstanceNetworkInterface, error) {
	ref, err := parseProviderID(node.ProviderID)
	if err != nil {
		return attachment{}, types.InstanceNetworkInterface{}, err
	}
	if ref.zone != "" && !strings.HasPrefix(ref.zone, p.region) {
		return attachment{}, types.InstanceNetworkInterface{}, fmt.Errorf("node %s is in zone %s, outside region %s of this provider: %w", node.Name, ref.zone, p.region, providers.ErrUnsupportedNode)
	}
	inst, err := p.describeInstance(ctx, node.Name, ref.id)
	if err != nil {
		return attachment{}, types.InstanceNetworkInterface{}, err
	}
	nic, err := primaryInterface(node.Name, inst)
	if err != nil {
		return attachment{}, types.InstanceNetworkInterface{}, err
	}
	at, err := p.newAttachment(ctx, node.Name, inst, nic)
	if err != nil {
		return attachment{}, types.InstanceNetworkInterface{}, err
	}
	remember(p, p.nodes, at.instance, at)
	return at, nic, nil
}

func (p *Provider) newAttachment(ctx context.Context, node string, inst types.Instance, nic types.InstanceNetworkInterface) (attachment, error) {
	at := attachment{node: node, instance: sdkaws.ToString(inst.InstanceId), eni: sdkaws.ToString(nic.NetworkInterfaceId),
		subnetID: sdkaws.ToString(nic.SubnetId), vpc: sdkaws.ToString(nic.VpcId)}
	if inst.Placement != nil {
		at.zone = sdkaws.ToString(inst.Placement.AvailabilityZone)
	}
	var err error
	if at.subnet, err = p.subnetCIDR(ctx, at.subnetID); err != nil {
		return attachment{}, err
	}
	at.capacity, err = p.typeCapacity(ctx, string(inst.InstanceType))
	return at, err
}

// describeInstance reads one instance, always through a filter (EC2 serves unfiltered Describe calls from
// a smaller token bucket). A terminated instance counts as gone.
func (p *Provider) describeInstance(ctx context.Context, node, id string) (types.Instance, error) {
	out, err := call(ctx, p, "DescribeInstances", func(ctx context.Context) (*ec2.DescribeInstancesOutput, error) {
		return p.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{filter("instance-id", id)}})
	})
	if err != nil {
		return types.Instance{}, fmt.Errorf("node %s: %w", node, err)
	}
	for _, r := range out.Reservations {
		for _, inst := range r.Instances {
			if inst.State != nil && (inst.State.Name == types.InstanceStateNameTerminated || inst.State.Name == types.InstanceStateNameShuttingDown) {
				return types.Instance{}, fmt.Errorf("node %s: instance %s is %s: %w", node, id, inst.State.Name, providers.ErrNotFound)
			}
			return inst, nil
		}
	}
	return types.Instance{}, fmt.Errorf("node %s: instance %s: %w", node, id, providers.ErrNotFound)
}

// primaryInterface is the ENI at device index 0 of the first network card: the one that cannot be
// detached, and the one the VPC CNI also uses first.
func primaryInterface(node string, inst types.Instance) (types.InstanceNetworkInterface, error) {
	for _, nic := range inst.NetworkInterfaces {
		a := nic.Attachment
		if a != nil && sdkaws.ToInt32(a.DeviceIndex) == 0 && sdkaws.ToInt32(a.NetworkCardIndex) == 0 {
			return nic, nil
		}
	}
	return types.InstanceNetworkInterface{}, fmt.Errorf("node %s: instance %s has no network interface at device index 0: %w",
		node, sdkaws.ToString(inst.InstanceId), providers.ErrNotFound)
}

func (p *Provider) subnetCIDR(ctx context.Context, id string) (netip.Prefix, error) {
	if cidr, ok := cached(p, p.subnets, id); ok {
		return cidr, nil
	}
	out, err := call(ctx, p, "DescribeSubnets", func(ctx context.Context) (*ec2.DescribeSubnetsOutput, error) {
		return p.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{filter("subnet-id", id)}})
	})
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("subnet %s: %w", id, err)
	}
	if len(out.Subnets) == 0 {
		return netip.Prefix{}, fmt.Errorf("subnet %s: %w", id, providers.ErrNotFound)
	}
	cidr, err := netip.ParsePrefix(sdkaws.ToString(out.Subnets[0].CidrBlock))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("subnet %s has CIDR %q: %w", id, sdkaws.ToString(out.Subnets[0].CidrBlock), providers.ErrPermanent)
	}
	remember(p, p.subnets, id, cidr)
	return cidr, nil
}

// typeCapacity is how many IPv4 addresses one interface of the instance type holds.
func (p *Provider) typeCapacity(ctx context.Context, instanceType string) (int, error) {
	if n, ok := cached(p, p.types, instanceType); ok {
		return n, nil
	}
	out, err := call(ctx, p, "DescribeInstanceTypes", func(ctx context.Context) (*ec2.DescribeInstanceTypesOutput, error) {
		return p.ec2.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{types.InstanceType(instanceType)}})
	})
	if err != nil {
		return 0, fmt.Errorf("instance type %s: %w", instanceType, err)
	}
	if len(out.InstanceTypes) == 0 || out.InstanceTypes[0].NetworkInfo == nil {
		return 0, fmt.Errorf("instance type %s: no network information: %w", instanceType, providers.ErrNotFound)
	}
	n := int(sdkaws.ToInt32(out.InstanceTypes[0].NetworkInfo.Ipv4AddressesPerInterface))
	remember(p, p.types, instanceType, n)
	return n, nil
}

func filter(name string, values ...string) types.Filter {
	return types.Filter{Name: sdkaws.String(name), Values: values}
}

// cached reads one of the provider's caches.
func cached[V any](p *Provider, m map[string]V, key string) (V, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := m[key]
	return v, ok
}

// remember writes one of the provider's caches.
func remember[V any](p *Provider, m map[string]V, key string, v V) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m[key] = v
}
