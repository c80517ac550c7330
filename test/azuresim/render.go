package azuresim

import (
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"
)

// get answers a GET of one resource in the shape of its SDK model.
func (st *state) get(rt route) (any, *APIError) {
	k := key(rt.id)
	switch rt.kind {
	case "microsoft.compute/virtualmachines":
		if v, ok := st.vms[k]; ok {
			return st.renderVM(v), nil
		}
	case "microsoft.compute/virtualmachinescalesets":
		if ss, ok := st.scaleSets[k]; ok {
			return st.renderScaleSet(ss), nil
		}
	case "microsoft.compute/virtualmachinescalesets/virtualmachines":
		if v, ok := st.vmssVMs[k]; ok {
			return st.renderVMSSVM(v), nil
		}
	case "microsoft.compute/virtualmachinescalesets/virtualmachines/networkinterfaces":
		if n, ok := st.nics[k]; ok && n.uniform {
			return st.renderNIC(n), nil
		}
	case "microsoft.network/networkinterfaces":
		if n, ok := st.nics[k]; ok && !n.uniform {
			return st.renderNIC(n), nil
		}
	case "microsoft.network/virtualnetworks/subnets":
		if sn, ok := st.subnets[k]; ok {
			return st.renderSubnet(sn), nil
		}
	case "microsoft.network/publicipaddresses":
		if p, ok := st.pips[k]; ok {
			return st.renderPIP(p), nil
		}
	}
	return nil, notFound(rt)
}

func notFound(rt route) *APIError {
	spec := kinds[rt.kind]
	name := ""
	if len(rt.names) > 0 {
		name = rt.names[len(rt.names)-1]
	}
	return apiErr(http.StatusNotFound, CodeResourceNotFound, "The Resource '%s/%s' under resource group '%s' was not found.", spec.action, name, rt.rg)
}

// listNICs lists the Network resource provider's NICs of a resource group or of the subscription; the
// NICs of Uniform scale set instances are not among them.
func (st *state) listNICs(rt route) armnetwork.InterfaceListResult {
	out := armnetwork.InterfaceListResult{Value: []*armnetwork.Interface{}}
	prefix := key(st.rgID(rt.rg) + "/")
	for _, k := range st.nicOrder {
		n := st.nics[k]
		if n.uniform || rt.rg != "" && !strings.HasPrefix(k, prefix) {
			continue
		}
		out.Value = append(out.Value, to.Ptr(st.renderNIC(n)))
	}
	return out
}

func (st *state) renderNIC(n *nic) armnetwork.Interface {
	state := armnetwork.ProvisioningStateSucceeded
	if n.op != nil && n.op.status == statusInProgress {
		state = armnetwork.ProvisioningStateUpdating
	} else if n.failed {
		state = armnetwork.ProvisioningStateFailed
	}
	props := &armnetwork.InterfacePropertiesFormat{ProvisioningState: to.Ptr(state), MacAddress: to.Ptr(n.mac), Primary: to.Ptr(true),
		NicType: to.Ptr(armnetwork.NetworkInterfaceNicTypeStandard)}
	if n.attachedTo != "" {
		props.VirtualMachine = &armnetwork.SubResource{ID: to.Ptr(n.attachedTo)}
	}
	for _, c := range n.ipconfigs {
		props.IPConfigurations = append(props.IPConfigurations, st.renderIPConfig(n, c, state))
	}
	typ := "Microsoft.Network/networkInterfaces"
	if n.uniform {
		typ = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/networkInterfaces"
	}
	return armnetwork.Interface{ID: to.Ptr(n.id), Name: to.Ptr(n.name), Type: to.Ptr(typ), Location: to.Ptr(st.location), Etag: to.Ptr(n.etag), Properties: props}
}

func (st *state) renderIPConfig(n *nic, c ipConfig, state armnetwork.ProvisioningState) *armnetwork.InterfaceIPConfiguration {
	method := armnetwork.IPAllocationMethodDynamic
	if c.static {
		method = armnetwork.IPAllocationMethodStatic
	}
	p := &armnetwork.InterfaceIPConfigurationPropertiesFormat{Primary: to.Ptr(c.primary), PrivateIPAddress: to.Ptr(c.ip.String()),
		PrivateIPAllocationMethod: to.Ptr(method), PrivateIPAddressVersion: to.Ptr(armnetwork.IPVersionIPv4),
		Subnet: &armnetwork.Subnet{ID: to.Ptr(c.subnet)}, ProvisioningState: to.Ptr(state)}
	if c.pip != "" {
		p.PublicIPAddress = &armnetwork.PublicIPAddress{ID: to.Ptr(c.pip)}
	}
	for _, pool := range c.pools {
		p.LoadBalancerBackendAddressPools = append(p.LoadBalancerBackendAddressPools, &armnetwork.BackendAddressPool{ID: to.Ptr(pool)})
	}
	return &armnetwork.InterfaceIPConfiguration{ID: to.Ptr(n.ipConfigID(c.name)), Name: to.Ptr(c.name), Etag: to.Ptr(n.etag),
		Type: to.Ptr("Microsoft.Network/networkInterfaces/ipConfigurations"), Properties: p}
}

func networkProfile(nics []string) *armcompute.NetworkProfile {
	np := &armcompute.NetworkProfile{}
	for i, id := range nics {
		np.NetworkInterfaces = append(np.NetworkInterfaces, &armcompute.NetworkInterfaceReference{ID: to.Ptr(id),
			Properties: &armcompute.NetworkInterfaceReferenceProperties{Primary: to.Ptr(i == 0)}})
	}
	return np
}

func zones(z string) []*string {
	if z == "" {
		return nil
	}
	return []*string{to.Ptr(z)}
}

func (st *state) renderVM(v *vm) armcompute.VirtualMachine {
	props := &armcompute.VirtualMachineProperties{NetworkProfile: networkProfile(v.nics), ProvisioningState: to.Ptr("Succeeded"), VMID: to.Ptr(v.vmID)}
	if v.scaleSet != "" {
		props.VirtualMachineScaleSet = &armcompute.SubResource{ID: to.Ptr(v.scaleSet)}
	}
	tags := map[string]*string{}
	for k, val := range v.tags {
		tags[k] = to.Ptr(val)
	}
	return armcompute.VirtualMachine{ID: to.Ptr(v.id), Name: to.Ptr(v.name), Type: to.Ptr("Microsoft.Compute/virtualMachines"),
		Location: to.Ptr(st.location), Zones: zones(v.zone), Tags: tags, Properties: props}
}

func (st *state) renderVMSSVM(v *vmssVM) armcompute.VirtualMachineScaleSetVM {
	return armcompute.VirtualMachineScaleSetVM{ID: to.Ptr(v.id), Name: to.Ptr(v.name), InstanceID: to.Ptr(v.instanceID),
		Type: to.Ptr("Microsoft.Compute/virtualMachineScaleSets/virtualMachines"), Location: to.Ptr(st.location), Zones: zones(v.zone),
		Properties: &armcompute.VirtualMachineScaleSetVMProperties{NetworkProfile: networkProfile(v.nics), ProvisioningState: to.Ptr("Succeeded")}}
}

func (st *state) renderScaleSet(ss *scaleSet) armcompute.VirtualMachineScaleSet {
	return armcompute.VirtualMachineScaleSet{ID: to.Ptr(ss.id), Name: to.Ptr(ss.name), Type: to.Ptr("Microsoft.Compute/virtualMachineScaleSets"),
		Location: to.Ptr(st.location), Properties: &armcompute.VirtualMachineScaleSetProperties{
			OrchestrationMode: to.Ptr(armcompute.OrchestrationMode(ss.orchestration)), ProvisioningState: to.Ptr("Succeeded")}}
}

func (st *state) renderSubnet(sn *subnet) armnetwork.Subnet {
	return armnetwork.Subnet{ID: to.Ptr(sn.id), Name: to.Ptr(sn.name), Type: to.Ptr("Microsoft.Network/virtualNetworks/subnets"),
		Properties: &armnetwork.SubnetPropertiesFormat{AddressPrefix: to.Ptr(sn.prefix.String()),
			ProvisioningState: to.Ptr(armnetwork.ProvisioningStateSucceeded)}}
}

func (st *state) renderPIP(p *pip) armnetwork.PublicIPAddress {
	props := &armnetwork.PublicIPAddressPropertiesFormat{IPAddress: to.Ptr(p.addr.String()),
		PublicIPAllocationMethod: to.Ptr(armnetwork.IPAllocationMethodStatic), PublicIPAddressVersion: to.Ptr(armnetwork.IPVersionIPv4),
		ProvisioningState: to.Ptr(armnetwork.ProvisioningStateSucceeded)}
	if n, cfg, ok := st.pipHolder(p.id); ok {
		props.IPConfiguration = &armnetwork.IPConfiguration{ID: to.Ptr(n.ipConfigID(cfg))}
	}
	return armnetwork.PublicIPAddress{ID: to.Ptr(p.id), Name: to.Ptr(p.name), Type: to.Ptr("Microsoft.Network/publicIPAddresses"),
		Location: to.Ptr(st.location), SKU: &armnetwork.PublicIPAddressSKU{Name: to.Ptr(armnetwork.PublicIPAddressSKUNameStandard)}, Properties: props}
}
