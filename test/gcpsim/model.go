package gcpsim

import (
	"github.com/egressgw/egressgw/test/simkit"
)

// Model is the project a simulator starts from, as written in a model file (YAML or JSON). Subnetworks
// are regional; an instance's first network interface is nic0.
//
//	project: egressgw-test
//	subnetworks:
//	- name: gateways
//	  region: us-central1
//	  network: vpc-1
//	  ipCidrRange: 10.0.1.0/24
//	  secondaryIpRanges: [{rangeName: pods, ipCidrRange: 10.4.0.0/16}]
//	instances:
//	- name: gw-a1
//	  zone: us-central1-a
//	  machineType: e2-standard-4
//	  networkInterfaces:
//	  - subnetwork: gateways
//	    networkIP: 10.0.1.11
//	    aliasIpRanges: [{ipCidrRange: 10.4.1.0/24, subnetworkRangeName: pods}]
type Model struct {
	Project     string           `json:"project"`
	Subnetworks []SubnetworkSpec `json:"subnetworks"`
	Instances   []InstanceSpec   `json:"instances"`
	// AliasRangesPerInterface overrides AliasRangesPerInterface for this model (0: the published limit).
	AliasRangesPerInterface int `json:"aliasRangesPerInterface,omitempty"`
}

// SubnetworkSpec is one subnetwork with its primary range and named secondary ranges.
type SubnetworkSpec struct {
	Name              string           `json:"name"`
	Region            string           `json:"region"`
	Network           string           `json:"network"`
	IPCIDRRange       string           `json:"ipCidrRange"`
	SecondaryIPRanges []SecondaryRange `json:"secondaryIpRanges,omitempty"`
}

// SecondaryRange is a named secondary range of a subnetwork (GKE puts its pod and service ranges there).
type SecondaryRange struct {
	RangeName   string `json:"rangeName"`
	IPCIDRRange string `json:"ipCidrRange"`
}

// InstanceSpec is one VM.
type InstanceSpec struct {
	Name              string          `json:"name"`
	Zone              string          `json:"zone"`
	MachineType       string          `json:"machineType,omitempty"`
	Status            string          `json:"status,omitempty"` // default RUNNING
	NetworkInterfaces []InterfaceSpec `json:"networkInterfaces"`
}

// InterfaceSpec is one NIC: its subnetwork (by name, in the instance's region), primary IP and alias ranges.
type InterfaceSpec struct {
	Subnetwork    string      `json:"subnetwork"`
	NetworkIP     string      `json:"networkIP"`
	AliasIPRanges []AliasSpec `json:"aliasIpRanges,omitempty"`
}

// AliasSpec is an alias IP range as the API writes it: a CIDR (or one address) and, for a secondary
// range, its name.
type AliasSpec struct {
	IPCIDRRange         string `json:"ipCidrRange"`
	SubnetworkRangeName string `json:"subnetworkRangeName,omitempty"`
}

// LoadModel reads a model file (YAML or JSON); unknown fields are an error so that typos do not pass
// silently.
func LoadModel(path string) (Model, error) { return simkit.LoadModel[Model](path) }
