package azure

import (
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"

	"github.com/egressgw/egressgw/providers"
)

// vmRef is what a Node's providerID names: a VM, or an instance of a scale set.
type vmRef struct {
	id                   string // the ARM ID as written
	sub, rg, name        string
	scaleSet, instanceID string // set for the scale set form
}

func (r vmRef) isScaleSetInstance() bool { return r.scaleSet != "" }

// parseProviderID accepts the forms the Azure cloud provider writes, compared without case as ARM IDs
// are: azure:///subscriptions/<s>/resourceGroups/<rg>/providers/Microsoft.Compute/virtualMachines/<name>
// (standalone VMs, AKS VirtualMachines pools, Flexible scale sets) and
// azure:///subscriptions/<s>/resourceGroups/<rg>/providers/Microsoft.Compute/virtualMachineScaleSets/<ss>/virtualMachines/<n>
// (Uniform scale sets). Anything else is ErrUnsupportedNode with the reason.
func parseProviderID(providerID, subscription string) (vmRef, error) {
	rest, ok := cutPrefixFold(providerID, "azure://")
	if !ok {
		return vmRef{}, fmt.Errorf("providerID %q is not of the form azure:///subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Compute/virtualMachines/<name>: %w", providerID, providers.ErrUnsupportedNode)
	}
	id, err := arm.ParseResourceID(rest)
	if err != nil {
		return vmRef{}, fmt.Errorf("providerID %q: %v: %w", providerID, err, providers.ErrUnsupportedNode)
	}
	ref := vmRef{id: rest, sub: id.SubscriptionID, rg: id.ResourceGroupName, name: id.Name}
	switch typ := id.ResourceType.String(); {
	case strings.EqualFold(typ, "Microsoft.Compute/virtualMachines"):
	case strings.EqualFold(typ, "Microsoft.Compute/virtualMachineScaleSets/virtualMachines") && id.Parent != nil:
		ref.scaleSet, ref.instanceID = id.Parent.Name, id.Name
	default:
		return vmRef{}, fmt.Errorf("providerID %q names a %s, not a virtual machine or scale set instance: %w", providerID, typ, providers.ErrUnsupportedNode)
	}
	if ref.rg == "" || ref.name == "" {
		return vmRef{}, fmt.Errorf("providerID %q lacks a resource group or name: %w", providerID, providers.ErrUnsupportedNode)
	}
	if !strings.EqualFold(ref.sub, subscription) {
		return vmRef{}, fmt.Errorf("providerID %q is in subscription %s, not in %s of this provider: %w", providerID, ref.sub, subscription, providers.ErrUnsupportedNode)
	}
	return ref, nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

// InstanceOf implements providers.Provider: the VM's ARM ID in lower case, as NodeInfo.Instance and
// Location.Instance (the VM a NIC is attached to) name it.
func (p *Provider) InstanceOf(providerID string) (string, error) {
	ref, err := parseProviderID(providerID, p.sub)
	return canonical(ref.id), err
}

// InstanceNode implements providers.Provider: the providerID azure://<VM ARM ID> of a VM or scale set
// instance of this provider's subscription.
func (p *Provider) InstanceNode(instance string) (providers.Node, error) {
	ref, err := parseProviderID("azure://"+instance, p.sub)
	if err != nil {
		return providers.Node{}, fmt.Errorf("instance %q is not the ARM ID of a virtual machine: %w", instance, err)
	}
	name := ref.name
	if ref.isScaleSetInstance() {
		name = ref.scaleSet + "_" + ref.instanceID // the scale set's own name for the instance
	}
	return providers.Node{Name: name, ProviderID: "azure://" + ref.id}, nil
}
