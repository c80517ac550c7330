package ec2sim

import (
	"github.com/egressgw/egressgw/test/simkit"
)

// Model is the VPC a simulator starts from, as written in a model file (YAML or JSON). Instances'
// interfaces are attached in list order (device index 0 first); an interface's first IP is its primary.
//
//	region: us-east-1
//	subnets:
//	- {id: subnet-a, vpc: vpc-1, cidr: 10.0.1.0/24, zone: us-east-1a}
//	instances:
//	- id: i-gw1
//	  type: m5.large
//	  interfaces:
//	  - {id: eni-gw1, subnet: subnet-a, ips: [10.0.1.10]}
//	elasticIPs:
//	- {allocationID: eipalloc-1, publicIP: 198.51.100.7}
type Model struct {
	Region    string       `json:"region,omitempty"`
	AccountID string       `json:"accountID,omitempty"`
	Subnets   []SubnetSpec `json:"subnets"`
	// InstanceTypes adds to (or overrides) the built-in table of instance types in instancetypes.go.
	InstanceTypes []InstanceTypeSpec `json:"instanceTypes,omitempty"`
	Instances     []InstanceSpec     `json:"instances"`
	ElasticIPs    []ElasticIPSpec    `json:"elasticIPs,omitempty"`
	// SecurityGroups are groups besides each VPC's default one (sg-<vpc suffix>), which always exists.
	SecurityGroups []SecurityGroupSpec `json:"securityGroups,omitempty"`
}

// SecurityGroupSpec is a security group that network interfaces may be created in.
type SecurityGroupSpec struct {
	ID  string `json:"id"`
	VPC string `json:"vpc"`
}

// SubnetSpec is one subnet. AWS subnets live in one zone.
type SubnetSpec struct {
	ID   string            `json:"id"`
	VPC  string            `json:"vpc"`
	CIDR string            `json:"cidr"`
	Zone string            `json:"zone"`
	Tags map[string]string `json:"tags,omitempty"`
}

// InstanceTypeSpec is the part of an instance type that limits IP addresses.
type InstanceTypeSpec struct {
	Name             string `json:"name"`
	IPv4PerInterface int    `json:"ipv4PerInterface"`
	MaxInterfaces    int    `json:"maxInterfaces"`
}

// InstanceSpec is one instance and its network interfaces.
type InstanceSpec struct {
	ID         string            `json:"id"`
	Type       string            `json:"type"`
	State      string            `json:"state,omitempty"` // running (default), stopped, terminated, ...
	Tags       map[string]string `json:"tags,omitempty"`
	Interfaces []InterfaceSpec   `json:"interfaces"`
}

// InterfaceSpec is one ENI; IPs[0] is its primary private address. The interface at device index 0 is
// always deleted on termination; the others only when DeleteOnTermination says so (as a launch template
// may set it).
type InterfaceSpec struct {
	ID     string   `json:"id"`
	Subnet string   `json:"subnet"`
	IPs    []string `json:"ips"`
	// Prefixes are delegated /28 prefixes (prefix delegation); each takes one of the interface's slots.
	Prefixes            []string          `json:"prefixes,omitempty"`
	Tags                map[string]string `json:"tags,omitempty"`
	Description         string            `json:"description,omitempty"`
	DeleteOnTermination bool              `json:"deleteOnTermination,omitempty"`
}

// ElasticIPSpec is one Elastic IP, optionally associated with a private IP of an interface.
type ElasticIPSpec struct {
	AllocationID string            `json:"allocationID"`
	PublicIP     string            `json:"publicIP"`
	Interface    string            `json:"interface,omitempty"`
	PrivateIP    string            `json:"privateIP,omitempty"`
	Tags         map[string]string `json:"tags,omitempty"`
}

// LoadModel reads a model file (YAML or JSON).
func LoadModel(path string) (Model, error) { return simkit.LoadModel[Model](path) }

// ParseModel parses a model (YAML or JSON); unknown fields are an error so that typos do not pass silently.
func ParseModel(data []byte) (Model, error) { return simkit.ParseModel[Model](data) }
