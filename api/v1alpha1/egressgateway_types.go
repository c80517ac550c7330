package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EgressGatewaySpec is the desired state of an EgressGateway: which nodes act as gateways, which stable
// IPs they carry, and which namespaces may send traffic through them.
type EgressGatewaySpec struct {
	// nodeSelector picks the gateway nodes. Each egress IP lives on one of them at a time; the manager
	// moves it to another when that node fails. An empty selector would make every node a gateway and
	// is refused.
	// +required
	// +kubebuilder:validation:XValidation:rule="(has(self.matchLabels) && size(self.matchLabels) > 0) || (has(self.matchExpressions) && size(self.matchExpressions) > 0)",message="nodeSelector must select gateway nodes by at least one label, for example matchLabels: {egressgw.io/gateway: \"true\"}; an empty selector would make every node a gateway"
	NodeSelector LabelSelector `json:"nodeSelector"`

	// egressIPs are the stable source addresses of this gateway. Each must be a free address of the
	// subnet of at least one gateway node (on AWS, the subnet of the node's primary network interface).
	// +required
	// +listType=map
	// +listMapKey=ip
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=128
	// +kubebuilder:validation:XValidation:rule="self.all(a, self.exists_one(b, b.ip == a.ip))",message="each egress IP may appear only once in a gateway"
	// +kubebuilder:validation:XValidation:rule="self.all(a, !has(a.publicIP) || self.exists_one(b, has(b.publicIP) && b.publicIP == a.publicIP))",message="each publicIP may be named on only one egress IP: a public IP is associated with one private address at a time, so two egress IPs naming it would take it from each other"
	EgressIPs []EgressIP `json:"egressIPs"`

	// namespaceSelector admits the namespaces whose EgressPolicies may use this gateway. It is required so
	// that admission is always explicit: {} admits every namespace.
	// +required
	NamespaceSelector LabelSelector `json:"namespaceSelector"`
}

// EgressIP is one stable source address of a gateway.
type EgressIP struct {
	// ip is the private address, in canonical form (10.0.1.50). Only IPv4 is supported in v1alpha1.
	// +required
	// +kubebuilder:validation:MinLength=7
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self) && ip.isCanonical(self)",message="ip must be an IP address written in canonical form, for example 10.0.1.50"
	// +kubebuilder:validation:XValidation:rule="!isIP(self) || ip(self).family() == 4",message="ip must be an IPv4 address: IPv6 egress IPs are not supported yet"
	// +kubebuilder:validation:XValidation:rule="!isIP(self) || ip(self).isGlobalUnicast()",message="ip must be a unicast host address, not an unspecified, loopback, link-local, multicast or broadcast address"
	IP string `json:"ip"`

	// publicIP optionally gives the address a public face: an AWS Elastic IP allocation ID
	// (eipalloc-...) associated with the private IP, or an Azure public IP resource ID set on its ip
	// configuration. It follows the private IP when the IP moves.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.matches('^eipalloc-[0-9a-f]{8,17}$') || self.matches('^(?i)/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\\\\.Network/publicIPAddresses/[^/]+$')",message="publicIP must be an AWS Elastic IP allocation ID (eipalloc-0123456789abcdef0) or an Azure public IP resource ID (/subscriptions/ID/resourceGroups/GROUP/providers/Microsoft.Network/publicIPAddresses/NAME)"
	PublicIP string `json:"publicIP,omitempty"`
}

// AssignmentState says where an egress IP is in its life on a node.
// +kubebuilder:validation:Enum=Pending;Assigning;Assigned;Releasing;Unplaced
type AssignmentState string

const (
	// AssignmentPending: the IP has been chosen for a node and the cloud has not been asked yet.
	AssignmentPending AssignmentState = "Pending"
	// AssignmentAssigning: the cloud call that puts the IP on the node is in flight.
	AssignmentAssigning AssignmentState = "Assigning"
	// AssignmentAssigned: the cloud confirmed the IP on the node.
	AssignmentAssigned AssignmentState = "Assigned"
	// AssignmentReleasing: the IP is being removed from the node.
	AssignmentReleasing AssignmentState = "Releasing"
	// AssignmentUnplaced: no eligible node can take the IP; the message says why.
	AssignmentUnplaced AssignmentState = "Unplaced"
)

// IPAssignment records where one egress IP lives.
type IPAssignment struct {
	// ip is the egress IP from the spec.
	// +required
	// +kubebuilder:validation:MaxLength=45
	IP string `json:"ip"`

	// publicIP is the public address that currently maps to ip, when one is configured.
	// +optional
	// +kubebuilder:validation:MaxLength=45
	PublicIP string `json:"publicIP,omitempty"`

	// node is the gateway node that holds the IP, or is about to.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Node string `json:"node,omitempty"`

	// state is where the IP is in its life on the node.
	// +required
	State AssignmentState `json:"state"`

	// since is when the IP entered this state.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`

	// reason says in one CamelCase word why an IP is not Assigned, for example NoNodeInSubnet.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	Reason string `json:"reason,omitempty"`

	// message says why an IP is not Assigned.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// GatewayNodeStatus describes one node that matches the gateway's nodeSelector.
type GatewayNodeStatus struct {
	// name of the Node.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// zone of the node, from its topology.kubernetes.io/zone label or the cloud.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	Zone string `json:"zone,omitempty"`

	// healthy is true while the node's agent answers and the node is Ready and schedulable.
	// +required
	Healthy bool `json:"healthy"`

	// egressInterface is the node's dedicated network interface for egress IPs, when the cloud needs one
	// (AWS: the secondary ENI the egress IPs live on, which the VPC CNI does not manage). The manager
	// fills it; the node's agent routes SNATed traffic out of it. Absent, SNATed traffic leaves through
	// the node's primary interface.
	// +optional
	EgressInterface *EgressInterface `json:"egressInterface,omitempty"`
}

// EgressInterface identifies a gateway node's egress interface and how to route out of it.
// +kubebuilder:validation:XValidation:rule="!isCIDR(self.address) || !isIP(self.router) || cidr(self.address).containsIP(self.router)",message="router must lie inside the subnet of address, for example address 10.0.1.17/24 with router 10.0.1.1"
type EgressInterface struct {
	// mac is the interface's hardware address, which finds it on the node whatever the OS named it.
	// +required
	// +kubebuilder:validation:MinLength=17
	// +kubebuilder:validation:MaxLength=17
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{2}(:[0-9a-f]{2}){5}$`
	MAC string `json:"mac"`

	// address is the interface's own primary address with its subnet's prefix length, for example
	// 10.0.1.17/24.
	// +required
	// +kubebuilder:validation:MaxLength=49
	// +kubebuilder:validation:XValidation:rule="isCIDR(self) && cidr(self).ip().family() == 4",message="address must be the interface's IPv4 address and its subnet's prefix length, for example 10.0.1.17/24"
	Address string `json:"address"`

	// router is the subnet's router, the next hop of traffic leaving through the interface (on AWS the
	// subnet's first address plus one, for example 10.0.1.1).
	// +required
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self) && ip(self).family() == 4",message="router must be an IPv4 address, for example 10.0.1.1"
	Router string `json:"router"`
}

// EgressGatewayStatus is what the manager observed and did.
type EgressGatewayStatus struct {
	// observedGeneration is the spec generation this status describes.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready (every egress IP is assigned to a healthy node) and Degraded (some IP is unplaced
	// or on its way to another node).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// assignments say where each egress IP lives.
	// +optional
	// +listType=map
	// +listMapKey=ip
	// +kubebuilder:validation:MaxItems=128
	Assignments []IPAssignment `json:"assignments,omitempty"`

	// egressIPCount, assignedIPCount and healthyNodeCount summarize the lists for `kubectl get egw`,
	// which can print only single values: the number of egress IPs in the spec, of those assigned to a
	// healthy node, and of healthy gateway nodes.
	// +optional
	// +kubebuilder:validation:Minimum=0
	EgressIPCount int32 `json:"egressIPCount,omitempty"`
	// +optional
	// +kubebuilder:validation:Minimum=0
	AssignedIPCount int32 `json:"assignedIPCount,omitempty"`
	// +optional
	// +kubebuilder:validation:Minimum=0
	HealthyNodeCount int32 `json:"healthyNodeCount,omitempty"`

	// nodes are the nodes that match the nodeSelector, at most 512 of them.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=512
	Nodes []GatewayNodeStatus `json:"nodes,omitempty"`
}

// EgressGateway is a set of stable egress IPs carried by designated gateway nodes. The manager attaches
// each IP to one healthy gateway node through the cloud API and moves it when that node fails.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=egw,categories=egressgw
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="IPs",type=integer,JSONPath=`.status.egressIPCount`,description="How many egress IPs the gateway has"
// +kubebuilder:printcolumn:name="Assigned",type=integer,JSONPath=`.status.assignedIPCount`,description="How many egress IPs are assigned to a healthy node"
// +kubebuilder:printcolumn:name="Healthy Nodes",type=integer,JSONPath=`.status.healthyNodeCount`,description="How many gateway nodes are healthy"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type EgressGateway struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec EgressGatewaySpec `json:"spec"`
	// +optional
	Status EgressGatewayStatus `json:"status,omitempty"`
}

// EgressGatewayList is a list of EgressGateways.
// +kubebuilder:object:root=true
type EgressGatewayList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []EgressGateway `json:"items"`
}

func init() {
	SchemeBuilder.Register(&EgressGateway{}, &EgressGatewayList{})
}
