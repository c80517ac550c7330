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
	"github.com/egressgw/egressgw/providers/internal/egressip"
	"github.com/egressgw/egressgw/providers/internal/lockedmap"
)

// attachment is where a node's egress IPs go: the gateway's dedicated ENI, or its primary ENI (device index
// 0) in the primary-interface mode. It is cached for the instance's life (until RemoveAttachment), so that
// a failover costs one EC2 call.
type attachment struct {
	node                               string
	instance, eni, subnetID, vpc, zone string
	subnet                             netip.Prefix
	capacity                           int
	dedicated                          bool
}

// check refuses an IP that EC2 could never put on this attachment: one outside its subnet, or one of the
// subnet's addresses AWS reserves, which EC2 refuses forever.
func (a attachment) check(ip netip.Addr) error {
	if err := egressip.InSubnet(ip, "AWS", a.subnet, a.subnetID, a.node); err != nil {
		return err
	}
	if why := reservedByAWS(ip, a.subnet); why != "" {
		return fmt.Errorf("%s is reserved by AWS in subnet %s (%s) as %s: AWS never assigns the first four and the last address of a subnet; choose another egress IP: %w",
			ip, a.subnetID, a.subnet, why, providers.ErrPermanent)
	}
	return nil
}

// DescribeNode implements providers.Provider. It reads the instance and its egress interface afresh (their
// addresses change), and the subnet and instance type only the first time they are seen. It creates
// nothing: a gateway without its dedicated interface is ErrNotFound until EnsureAttachment made one.
func (p *Provider) DescribeNode(ctx context.Context, node providers.Node) (providers.NodeInfo, error) {
	return p.describe(ctx, node, false)
}

// EnsureAttachment implements providers.Attacher: DescribeNode that first finds, adopts or creates the
// gateway's dedicated interface (eni.go). In the primary-interface mode it is DescribeNode.
func (p *Provider) EnsureAttachment(ctx context.Context, node providers.Node) (providers.NodeInfo, error) {
	return p.describe(ctx, node, true)
}

func (p *Provider) describe(ctx context.Context, node providers.Node, create bool) (providers.NodeInfo, error) {
	ctx, cancel := p.bound(ctx)
	defer cancel()
	at, nic, err := p.resolve(ctx, node, create)
	if err != nil {
		return providers.NodeInfo{}, err
	}
	return nodeInfo(at, nic), nil
}

func nodeInfo(at attachment, nic nicView) providers.NodeInfo {
	info := providers.NodeInfo{Instance: at.instance, Interface: at.eni, Zone: at.zone, SubnetID: at.subnetID,
		Subnet: at.subnet, Capacity: at.capacity, Addresses: nic.addrs, Prefixes: nic.prefixes,
		Dedicated: at.dedicated, MAC: nic.mac, Gateway: at.subnet.Masked().Addr().Next()}
	if len(nic.addrs) > 0 {
		info.PrimaryIP = nic.addrs[0]
	}
	return info
}

// attachment returns the cached attachment of node, resolving it on first use (and creating the dedicated
// interface if it is still missing: a move must not fail for want of it). Concurrent first uses share one
// resolution: a new leader's first failover burst must not spend the Describe bucket on the same few
// gateways.
func (p *Provider) attachment(ctx context.Context, node providers.Node) (attachment, error) {
	ref, err := p.instanceRef(node)
	if err != nil {
		return attachment{}, err
	}
	if at, ok := lockedmap.Get(&p.mu, p.nodes, ref.id); ok {
		at.node = node.Name
		return at, nil
	}
	v, err, _ := p.resolving.Do(ref.id, func() (any, error) {
		at, _, err := p.resolve(ctx, node, true)
		return at, err
	})
	if err != nil {
		return attachment{}, err
	}
	at := v.(attachment)
	at.node = node.Name
	return at, nil
}

// resolve asks EC2 for node's instance and egress interface and caches the attachment.
func (p *Provider) resolve(ctx context.Context, node providers.Node, create bool) (attachment, nicView, error) {
	ref, err := p.instanceRef(node)
	if err != nil {
		return attachment{}, nicView{}, err
	}
	inst, err := p.describeInstance(ctx, node.Name, ref.id)
	if err != nil {
		return attachment{}, nicView{}, err
	}
	primary, err := primaryInterface(node.Name, inst)
	if err != nil {
		return attachment{}, nicView{}, err
	}
	nic := primary
	if p.dedicated() {
		if nic, err = p.egressENI(ctx, node.Name, inst, primary, create); err != nil {
			return attachment{}, nicView{}, err
		}
	}
	at, err := p.newAttachment(ctx, node.Name, inst, nic)
	if err != nil {
		return attachment{}, nicView{}, err
	}
	lockedmap.Put(&p.mu, p.nodes, at.instance, at)
	return at, nic, nil
}

// instanceRef is the instance node's providerID names, refused when it is not of this provider's region
// (before any cache is consulted: the same instance ID in another region is another instance).
func (p *Provider) instanceRef(node providers.Node) (instanceRef, error) {
	ref, err := parseProviderID(node.ProviderID)
	if err != nil {
		return instanceRef{}, err
	}
	if ref.zone != "" && !strings.HasPrefix(ref.zone, p.region) {
		return instanceRef{}, fmt.Errorf("node %s is in zone %s, outside region %s of this provider: %w", node.Name, ref.zone, p.region, providers.ErrUnsupportedNode)
	}
	return ref, nil
}

func (p *Provider) newAttachment(ctx context.Context, node string, inst types.Instance, nic nicView) (attachment, error) {
	at := attachment{node: node, instance: sdkaws.ToString(inst.InstanceId), eni: nic.id, subnetID: nic.subnetID, vpc: nic.vpc,
		dedicated: p.dedicated()}
	if inst.Placement != nil {
		at.zone = sdkaws.ToString(inst.Placement.AvailabilityZone)
	}
	sn, err := p.subnet(ctx, at.subnetID)
	if err != nil {
		return attachment{}, err
	}
	at.subnet = sn.cidr
	limits, err := p.typeLimits(ctx, string(inst.InstanceType))
	at.capacity = limits.ipv4PerInterface
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
// detached, and the one the VPC CNI always manages, whatever its tags.
func primaryInterface(node string, inst types.Instance) (nicView, error) {
	for _, nic := range inst.NetworkInterfaces {
		a := nic.Attachment
		if a != nil && sdkaws.ToInt32(a.DeviceIndex) == 0 && sdkaws.ToInt32(a.NetworkCardIndex) == 0 {
			return viewOfInstanceNIC(nic), nil
		}
	}
	return nicView{}, fmt.Errorf("node %s: instance %s has no network interface at device index 0: %w",
		node, sdkaws.ToString(inst.InstanceId), providers.ErrNotFound)
}

// typeLimits are the network limits of an instance type.
type typeLimits struct {
	ipv4PerInterface, maxInterfaces int
}

// typeLimits reads how many IPv4 addresses one interface of the instance type holds, and how many
// interfaces it takes.
func (p *Provider) typeLimits(ctx context.Context, instanceType string) (typeLimits, error) {
	if l, ok := lockedmap.Get(&p.mu, p.types, instanceType); ok {
		return l, nil
	}
	out, err := call(ctx, p, "DescribeInstanceTypes", func(ctx context.Context) (*ec2.DescribeInstanceTypesOutput, error) {
		return p.ec2.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{types.InstanceType(instanceType)}})
	})
	if err != nil {
		return typeLimits{}, fmt.Errorf("instance type %s: %w", instanceType, err)
	}
	if len(out.InstanceTypes) == 0 || out.InstanceTypes[0].NetworkInfo == nil {
		return typeLimits{}, fmt.Errorf("instance type %s: no network information: %w", instanceType, providers.ErrNotFound)
	}
	ni := out.InstanceTypes[0].NetworkInfo
	l := typeLimits{ipv4PerInterface: int(sdkaws.ToInt32(ni.Ipv4AddressesPerInterface)), maxInterfaces: int(sdkaws.ToInt32(ni.MaximumNetworkInterfaces))}
	lockedmap.Put(&p.mu, p.types, instanceType, l)
	return l, nil
}

func filter(name string, values ...string) types.Filter {
	return types.Filter{Name: sdkaws.String(name), Values: values}
}
