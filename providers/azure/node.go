package azure

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/providers/internal/egressip"
	"github.com/egressgw/egressgw/providers/internal/lockedmap"
)

// attachment is where a node's egress IPs go: the primary NIC of its VM and that NIC's subnet. A VM's
// primary NIC changes only while the VM is deallocated, so it is cached; a NIC that has gone makes the
// provider resolve the node again.
type attachment struct {
	node          string
	vm, zone      string // vm: canonical ID
	nicRG, nicNam string
	nicID         string // canonical
	subnetID      string
	subnet        netip.Prefix
}

// subnetInfo is a subnet's address prefixes (a subnet's prefixes are fixed while NICs use them).
type subnetInfo struct {
	prefixes []netip.Prefix
}

// check refuses an IP that Azure could never put on this attachment.
func (a attachment) check(ip netip.Addr) error {
	return egressip.InSubnet(ip, "Azure", a.subnet, a.subnetID, a.node)
}

// DescribeNode implements providers.Provider. The NIC is read afresh (its addresses change); the VM and
// the subnet only the first time they are seen.
func (p *Provider) DescribeNode(ctx context.Context, node providers.Node) (providers.NodeInfo, error) {
	ctx, cancel := p.bound(ctx)
	defer cancel()
	at, nic, err := p.freshNIC(ctx, node)
	if err != nil {
		return providers.NodeInfo{}, err
	}
	if err := p.checkShared(at, nic); err != nil {
		return providers.NodeInfo{}, err
	}
	info := providers.NodeInfo{Instance: at.vm, Interface: at.nicID, Zone: at.zone, SubnetID: at.subnetID, Subnet: at.subnet,
		Capacity: MaxIPConfigsPerNIC}
	for _, c := range configs(nic) {
		if ip, err := netip.ParseAddr(deref(c.Properties.PrivateIPAddress)); err == nil {
			info.Addresses = append(info.Addresses, ip) // configs lists the primary first
		}
	}
	return info, nil
}

// freshNIC returns node's attachment and a fresh read of its NIC, resolving the node again once when
// the cached NIC has gone.
func (p *Provider) freshNIC(ctx context.Context, node providers.Node) (attachment, armnetwork.Interface, error) {
	at, err := p.attachment(ctx, node)
	if err != nil {
		return attachment{}, armnetwork.Interface{}, err
	}
	nic, err := p.getNIC(ctx, at)
	if err != nil && isNotFound(err) {
		p.forget(at)
		if at, err = p.attachment(ctx, node); err == nil {
			nic, err = p.getNIC(ctx, at)
		}
	}
	return at, nic, err
}

func (p *Provider) getNIC(ctx context.Context, at attachment) (armnetwork.Interface, error) {
	resp, err := call(ctx, p, false, "get network interface "+at.nicNam, func(ctx context.Context) (armnetwork.InterfacesClientGetResponse, error) {
		return p.nics.Get(ctx, at.nicRG, at.nicNam, nil)
	})
	if err != nil {
		return armnetwork.Interface{}, fmt.Errorf("node %s: %w", at.node, err)
	}
	return resp.Interface, nil
}

// attachment returns the cached attachment of node, resolving it on first use; concurrent first uses
// share one resolution.
func (p *Provider) attachment(ctx context.Context, node providers.Node) (attachment, error) {
	ref, err := parseProviderID(node.ProviderID, p.sub)
	if err != nil {
		return attachment{}, fmt.Errorf("node %s: %w", node.Name, err)
	}
	k := canonical(ref.id)
	if at, ok := lockedmap.Get(&p.mu, p.nodes, k); ok {
		at.node = node.Name
		return at, nil
	}
	v, err, _ := p.resolves.Do(k, func() (any, error) { return p.resolve(ctx, node.Name, ref) })
	if err != nil {
		return attachment{}, err
	}
	at := v.(attachment)
	at.node = node.Name
	return at, nil
}

func (p *Provider) forget(at attachment) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.nodes, at.vm)
}

// resolve reads node's VM (or scale set instance), finds its primary NIC and that NIC's subnet.
func (p *Provider) resolve(ctx context.Context, node string, ref vmRef) (attachment, error) {
	nicRefs, zone, err := p.vmNICs(ctx, node, ref)
	if err != nil {
		return attachment{}, err
	}
	nicID, err := primaryNICID(node, ref, nicRefs)
	if err != nil {
		return attachment{}, err
	}
	at := attachment{node: node, vm: canonical(ref.id), zone: zone, nicID: canonical(nicID.String()), nicRG: nicID.ResourceGroupName, nicNam: nicID.Name}
	nic, err := p.getNIC(ctx, at)
	if err != nil {
		return attachment{}, err
	}
	if at.subnetID, at.subnet, err = p.primarySubnet(ctx, node, nic); err != nil {
		return attachment{}, err
	}
	lockedmap.Put(&p.mu, p.nodes, at.vm, at)
	return at, nil
}

// vmNICs reads the NIC references of the VM or scale set instance ref names.
func (p *Provider) vmNICs(ctx context.Context, node string, ref vmRef) ([]*armcompute.NetworkInterfaceReference, string, error) {
	if ref.isScaleSetInstance() {
		resp, err := call(ctx, p, false, "get scale set instance "+ref.scaleSet+"/"+ref.instanceID, func(ctx context.Context) (armcompute.VirtualMachineScaleSetVMsClientGetResponse, error) {
			return p.vmssVMs.Get(ctx, ref.rg, ref.scaleSet, ref.instanceID, nil)
		})
		if err != nil {
			return nil, "", fmt.Errorf("node %s: %w", node, err)
		}
		return nicRefsOf(resp.Properties), firstZone(resp.Zones), nil
	}
	resp, err := call(ctx, p, false, "get virtual machine "+ref.name, func(ctx context.Context) (armcompute.VirtualMachinesClientGetResponse, error) {
		return p.vms.Get(ctx, ref.rg, ref.name, nil)
	})
	if err != nil {
		return nil, "", fmt.Errorf("node %s: %w", node, err)
	}
	var refs []*armcompute.NetworkInterfaceReference
	if resp.Properties != nil && resp.Properties.NetworkProfile != nil {
		refs = resp.Properties.NetworkProfile.NetworkInterfaces
	}
	return refs, firstZone(resp.Zones), nil
}

func nicRefsOf(props *armcompute.VirtualMachineScaleSetVMProperties) []*armcompute.NetworkInterfaceReference {
	if props == nil || props.NetworkProfile == nil {
		return nil
	}
	return props.NetworkProfile.NetworkInterfaces
}

// primaryNICID picks the primary NIC and refuses one the Network resource provider cannot write: the NIC
// of a Uniform scale set instance belongs to the scale set model.
func primaryNICID(node string, ref vmRef, refs []*armcompute.NetworkInterfaceReference) (*arm.ResourceID, error) {
	var pick string
	for _, r := range refs {
		if r != nil && r.ID != nil && (pick == "" || r.Properties != nil && r.Properties.Primary != nil && *r.Properties.Primary) {
			pick = *r.ID
		}
	}
	if pick == "" {
		return nil, fmt.Errorf("node %s: %s has no network interface: %w", node, ref.id, providers.ErrNotFound)
	}
	id, err := arm.ParseResourceID(pick)
	if err != nil {
		return nil, fmt.Errorf("node %s: NIC ID %q: %v: %w", node, pick, err, providers.ErrPermanent)
	}
	if typ := id.ResourceType.String(); strings.EqualFold(typ, "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/networkInterfaces") {
		return nil, fmt.Errorf("node %s is an instance of the Uniform scale set %s, whose NICs belong to the scale set model: a scale set cannot give one instance a chosen private IP, so egressgw cannot attach egress IPs there. Run the gateways on an AKS node pool of type VirtualMachines (az aks nodepool add --vm-set-type VirtualMachines) or on standalone VMs: %w: %w",
			node, ref.scaleSet, providers.ErrUnsupportedNode, providers.ErrPermanent)
	} else if !strings.EqualFold(typ, "Microsoft.Network/networkInterfaces") {
		return nil, fmt.Errorf("node %s: primary NIC %s is a %s, not a network interface: %w", node, pick, typ, providers.ErrUnsupportedNode)
	}
	return id, nil
}

func firstZone(zones []*string) string {
	if len(zones) == 0 || zones[0] == nil {
		return ""
	}
	return *zones[0]
}

// primarySubnet returns the subnet of the NIC's primary ip configuration, and of its prefixes the one that
// holds the primary address.
func (p *Provider) primarySubnet(ctx context.Context, node string, nic armnetwork.Interface) (string, netip.Prefix, error) {
	cs := configs(nic)
	if len(cs) == 0 || cs[0].Properties.Subnet == nil || cs[0].Properties.Subnet.ID == nil {
		return "", netip.Prefix{}, fmt.Errorf("node %s: NIC %s has no primary ip configuration with a subnet: %w", node, deref(nic.ID), providers.ErrPermanent)
	}
	subnetID := *cs[0].Properties.Subnet.ID
	info, err := p.subnetInfo(ctx, subnetID)
	if err != nil {
		return "", netip.Prefix{}, fmt.Errorf("node %s: %w", node, err)
	}
	primary, _ := netip.ParseAddr(deref(cs[0].Properties.PrivateIPAddress))
	for _, pf := range info.prefixes {
		if pf.Contains(primary) {
			return subnetID, pf, nil
		}
	}
	return "", netip.Prefix{}, fmt.Errorf("node %s: primary address %s is in none of the prefixes of subnet %s: %w", node, primary, subnetID, providers.ErrPermanent)
}

func (p *Provider) subnetInfo(ctx context.Context, subnetID string) (subnetInfo, error) {
	if info, ok := lockedmap.Get(&p.mu, p.prefixes, canonical(subnetID)); ok {
		return info, nil
	}
	id, err := arm.ParseResourceID(subnetID)
	if err != nil || id.Parent == nil {
		return subnetInfo{}, fmt.Errorf("subnet ID %q: %v: %w", subnetID, err, providers.ErrPermanent)
	}
	resp, err := call(ctx, p, false, "get subnet "+id.Name, func(ctx context.Context) (armnetwork.SubnetsClientGetResponse, error) {
		return p.subnets.Get(ctx, id.ResourceGroupName, id.Parent.Name, id.Name, nil)
	})
	if err != nil {
		return subnetInfo{}, err
	}
	var info subnetInfo
	if pr := resp.Properties; pr != nil {
		for _, s := range append([]*string{pr.AddressPrefix}, pr.AddressPrefixes...) {
			if pf, err := netip.ParsePrefix(deref(s)); err == nil && pf.Addr().Is4() {
				info.prefixes = append(info.prefixes, pf)
			}
		}
	}
	lockedmap.Put(&p.mu, p.prefixes, canonical(subnetID), info)
	return info, nil
}

// configs are the NIC's ip configurations with properties, the primary first.
func configs(nic armnetwork.Interface) []*armnetwork.InterfaceIPConfiguration {
	var primary, rest []*armnetwork.InterfaceIPConfiguration
	if nic.Properties == nil {
		return nil
	}
	for _, c := range nic.Properties.IPConfigurations {
		switch {
		case c == nil || c.Properties == nil:
		case c.Properties.Primary != nil && *c.Properties.Primary:
			primary = append(primary, c)
		default:
			rest = append(rest, c)
		}
	}
	return append(primary, rest...)
}

// checkShared refuses a NIC with secondary ip configurations egressgw did not create, unless allowed.
func (p *Provider) checkShared(at attachment, nic armnetwork.Interface) error {
	if p.opts.AllowSharedNIC {
		return nil
	}
	var foreign []string
	for _, c := range configs(nic)[min(1, len(configs(nic))):] {
		if !ours(deref(c.Name)) {
			foreign = append(foreign, deref(c.Name))
		}
	}
	if len(foreign) == 0 {
		return nil
	}
	return fmt.Errorf("node %s: NIC %s has %d secondary ip configurations egressgw did not create (%s): Azure CNI in node-subnet mode pre-allocates pod IPs that way, and its IPAM hands every secondary address of the NIC to pods, an egress IP included. Use Azure CNI Overlay (or another CNI whose pod IPs are not NIC addresses) for the gateway pool, or set --azure-allow-shared-nic if these configurations are not a CNI's: %w",
		at.node, at.nicNam, len(foreign), strings.Join(foreign[:min(3, len(foreign))], ", "), providers.ErrUnsupportedNode)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
