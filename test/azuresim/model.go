package azuresim

import (
	"github.com/egressgw/egressgw/test/simkit"
)

// Model is the Azure estate a simulator starts from, as written in a model file (YAML or JSON). A NIC's
// first IP configuration is its primary, and a VM's first NIC is its primary NIC. Resources without a
// resource group live in Model.ResourceGroup.
//
//	subscription: 00000000-0000-4000-8000-000000000001
//	location: westeurope
//	resourceGroup: mc_egressgw
//	virtualNetworks:
//	- name: vnet
//	  subnets: [{name: nodes, addressPrefix: 10.224.0.0/16}]
//	virtualMachines:
//	- name: gw-1
//	  nics: [{name: gw-1-nic, subnet: vnet/nodes, ips: [10.224.0.4]}]
//	scaleSets:
//	- name: aks-nodes
//	  orchestration: Uniform
//	  instances: [{id: "0", nics: [{name: aks-nodes-nic, subnet: vnet/nodes, ips: [10.224.0.10]}]}]
//	publicIPs:
//	- {name: egress-pip-1, address: 20.50.0.1}
type Model struct {
	Subscription    string         `json:"subscription,omitempty"`
	Location        string         `json:"location,omitempty"`
	ResourceGroup   string         `json:"resourceGroup,omitempty"`
	VirtualNetworks []VNetSpec     `json:"virtualNetworks"`
	VirtualMachines []VMSpec       `json:"virtualMachines,omitempty"`
	ScaleSets       []ScaleSetSpec `json:"scaleSets,omitempty"`
	PublicIPs       []PublicIPSpec `json:"publicIPs,omitempty"`
}

// VNetSpec is one virtual network and its subnets. Azure subnets span the region's zones.
type VNetSpec struct {
	Name          string       `json:"name"`
	ResourceGroup string       `json:"resourceGroup,omitempty"`
	Subnets       []SubnetSpec `json:"subnets"`
}

// SubnetSpec is one subnet.
type SubnetSpec struct {
	Name          string `json:"name"`
	AddressPrefix string `json:"addressPrefix"`
}

// VMSpec is one virtual machine: standalone, or a member of an AKS VirtualMachines node pool (give it the
// pool's tags), or an instance of a Flexible scale set (see ScaleSetSpec).
type VMSpec struct {
	Name          string            `json:"name"`
	ResourceGroup string            `json:"resourceGroup,omitempty"`
	Zone          string            `json:"zone,omitempty"`
	Tags          map[string]string `json:"tags,omitempty"`
	NICs          []NICSpec         `json:"nics"`
}

// ScaleSetSpec is one scale set. Instances of a Uniform set have NICs that belong to the scale set (the
// Network resource provider serves them read-only); instances of a Flexible set are ordinary VMs named
// <set>_<id> with ordinary NICs.
type ScaleSetSpec struct {
	Name          string         `json:"name"`
	ResourceGroup string         `json:"resourceGroup,omitempty"`
	Orchestration string         `json:"orchestration"` // Uniform or Flexible
	Instances     []InstanceSpec `json:"instances"`
}

// InstanceSpec is one scale set instance.
type InstanceSpec struct {
	ID   string    `json:"id"`
	Zone string    `json:"zone,omitempty"`
	NICs []NICSpec `json:"nics"`
}

// NICSpec is one network interface. Subnet is "<vnet>/<subnet>"; IPs[0] is the primary ip configuration's
// address, each further IP a secondary ip configuration named ipconfig2, ipconfig3, ... (the way Azure CNI
// in node-subnet mode pre-allocates pod IPs). BackendPools are load balancer backend pool IDs the primary
// ip configuration joins (an AKS node's kubernetes load balancer).
type NICSpec struct {
	Name          string   `json:"name"`
	ResourceGroup string   `json:"resourceGroup,omitempty"`
	Subnet        string   `json:"subnet"`
	IPs           []string `json:"ips"`
	BackendPools  []string `json:"backendPools,omitempty"`
}

// PublicIPSpec is one static Standard public IP address, optionally associated with an ip configuration
// of a NIC of the model ("<nic>/<ipconfig>").
type PublicIPSpec struct {
	Name          string `json:"name"`
	ResourceGroup string `json:"resourceGroup,omitempty"`
	Address       string `json:"address"`
	IPConfig      string `json:"ipConfig,omitempty"`
}

// LoadModel reads a model file (YAML or JSON).
func LoadModel(path string) (Model, error) { return simkit.LoadModel[Model](path) }

// ParseModel parses a model (YAML or JSON); unknown fields are an error so that typos do not pass silently.
func ParseModel(data []byte) (Model, error) { return simkit.ParseModel[Model](data) }
