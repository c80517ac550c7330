package azure

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/providers/internal/egressip"
)

// Assign implements providers.Provider: the NIC gets the ip configuration egressgw-<ip> with a static
// a.IP in its primary subnet and, when a.PublicIP names one, that public IP address (an empty a.PublicIP
// leaves the configuration without one). An address another NIC holds is refused by Azure with
// PrivateIPAddressInUse (ErrAssignedElsewhere, and ErrIPInUse as well when Locate shows an ip configuration
// egressgw did not make holds it, as one on this NIC is refused), a missing public IP with
// InvalidResourceReference (ErrNotFound); nothing changes then.
func (p *Provider) Assign(ctx context.Context, node providers.Node, a providers.Assignment) error {
	ctx, cancel := p.bound(ctx)
	defer cancel()
	pipID, err := publicIPID(a.PublicIP)
	if err != nil {
		return err
	}
	at, err := p.attachment(ctx, node)
	if err != nil {
		return err
	}
	if err := at.check(a.IP); err != nil {
		return err
	}
	if err := p.submit(ctx, at, "assign "+a.IP.String(), p.assignEdit(at, a.IP, pipID)); err != nil {
		return fmt.Errorf("assign %s to node %s (%s): %w", a.IP, at.node, at.nicNam, egressip.ExplainInUse(ctx, p.Locate, a.IP, err))
	}
	return nil
}

// publicIPID checks that s, when set, is the resource ID of a public IP address.
func publicIPID(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	id, err := arm.ParseResourceID(s)
	if err != nil || !strings.EqualFold(id.ResourceType.String(), "Microsoft.Network/publicIPAddresses") {
		return "", fmt.Errorf("publicIP %q is not the resource ID of an Azure public IP address (/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Network/publicIPAddresses/<name>): %w", s, providers.ErrPermanent)
	}
	return s, nil
}

func (p *Provider) assignEdit(at attachment, ip netip.Addr, pipID string) edit {
	return func(nic *armnetwork.Interface) (bool, error) {
		if err := p.checkShared(at, *nic); err != nil {
			return false, err
		}
		cs := configs(*nic)
		if c := withAddress(cs, ip); c != nil {
			return updatePublicIP(at, c, ip, pipID)
		}
		if len(cs) >= MaxIPConfigsPerNIC {
			return false, fmt.Errorf("NIC %s of node %s has %d ip configurations, Azure's limit: %w", at.nicNam, at.node, len(cs), providers.ErrCapacityExhausted)
		}
		nic.Properties.IPConfigurations = append(nic.Properties.IPConfigurations, egressConfig(at, ip, pipID))
		return true, nil
	}
}

// updatePublicIP makes the ip configuration that already has ip carry pipID, if it is egressgw's.
func updatePublicIP(at attachment, c *armnetwork.InterfaceIPConfiguration, ip netip.Addr, pipID string) (bool, error) {
	switch {
	case isPrimary(c):
		return false, fmt.Errorf("%s is the primary address of NIC %s (node %s), not an egress IP: %w: %w", ip, at.nicNam, at.node, providers.ErrIPInUse, providers.ErrAssignedElsewhere)
	case !ours(deref(c.Name)):
		return false, fmt.Errorf("%s is held by ip configuration %s of NIC %s (node %s), which egressgw did not create: %w: %w", ip, deref(c.Name), at.nicNam, at.node, providers.ErrIPInUse, providers.ErrAssignedElsewhere)
	case strings.EqualFold(publicIPOf(c), pipID):
		return false, nil
	}
	c.Properties.PublicIPAddress = nil
	if pipID != "" {
		c.Properties.PublicIPAddress = &armnetwork.PublicIPAddress{ID: to.Ptr(pipID)}
	}
	return true, nil
}

func egressConfig(at attachment, ip netip.Addr, pipID string) *armnetwork.InterfaceIPConfiguration {
	c := &armnetwork.InterfaceIPConfiguration{Name: to.Ptr(ipConfigName(ip)), Properties: &armnetwork.InterfaceIPConfigurationPropertiesFormat{
		Primary: to.Ptr(false), PrivateIPAllocationMethod: to.Ptr(armnetwork.IPAllocationMethodStatic), PrivateIPAddress: to.Ptr(ip.String()),
		PrivateIPAddressVersion: to.Ptr(armnetwork.IPVersionIPv4), Subnet: &armnetwork.Subnet{ID: to.Ptr(at.subnetID)}}}
	if pipID != "" {
		c.Properties.PublicIPAddress = &armnetwork.PublicIPAddress{ID: to.Ptr(pipID)}
	}
	return c
}

// Release implements providers.Provider: it removes egressgw's ip configuration holding a.IP (and with it
// the public IP association) from node's NIC. Its only write names this node's NIC, so it never touches
// another node; an address held by an ip configuration egressgw did not create is refused, not removed.
func (p *Provider) Release(ctx context.Context, node providers.Node, a providers.Assignment) error {
	ctx, cancel := p.bound(ctx)
	defer cancel()
	at, err := p.attachment(ctx, node)
	if err != nil {
		return err
	}
	if !a.IP.Is4() || !at.subnet.Contains(a.IP) {
		return nil // Azure cannot have it on this NIC
	}
	if err := p.submit(ctx, at, "release "+a.IP.String(), releaseEdit(at, a.IP)); err != nil {
		return fmt.Errorf("release %s from node %s (%s): %w", a.IP, at.node, at.nicNam, err)
	}
	return nil
}

func releaseEdit(at attachment, ip netip.Addr) edit {
	return func(nic *armnetwork.Interface) (bool, error) {
		c := withAddress(configs(*nic), ip)
		switch {
		case c == nil:
			return false, nil
		case isPrimary(c):
			return false, fmt.Errorf("%s is the primary address of NIC %s (node %s) and cannot be released: %w", ip, at.nicNam, at.node, providers.ErrPermanent)
		case !ours(deref(c.Name)):
			return false, fmt.Errorf("%s is held by ip configuration %s of NIC %s (node %s), which egressgw did not create; it is left alone: %w", ip, deref(c.Name), at.nicNam, at.node, providers.ErrPermanent)
		}
		nic.Properties.IPConfigurations = slices.DeleteFunc(nic.Properties.IPConfigurations, func(x *armnetwork.InterfaceIPConfiguration) bool { return x == c })
		return true, nil
	}
}

func withAddress(cs []*armnetwork.InterfaceIPConfiguration, ip netip.Addr) *armnetwork.InterfaceIPConfiguration {
	for _, c := range cs {
		if a, err := netip.ParseAddr(deref(c.Properties.PrivateIPAddress)); err == nil && a == ip {
			return c
		}
	}
	return nil
}

func isPrimary(c *armnetwork.InterfaceIPConfiguration) bool {
	return c.Properties.Primary != nil && *c.Properties.Primary
}

func publicIPOf(c *armnetwork.InterfaceIPConfiguration) string {
	if c.Properties.PublicIPAddress == nil {
		return ""
	}
	return deref(c.Properties.PublicIPAddress.ID)
}
