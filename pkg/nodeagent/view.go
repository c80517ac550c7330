package nodeagent

import (
	"net"
	"net/netip"
)

// View is the cluster as the datapath of one node needs to see it. The agent's controller fills it from
// Nodes, Pods, EgressPolicies (status.egressIP, status.gatewayNode) and the cluster's CIDRs; the datapath
// itself never talks to the API server.
type View struct {
	// Node is the name of the node being programmed.
	Node string
	// Nodes are all the cluster's nodes with their tunnel (internal) IPs, this node included.
	Nodes []NodeInfo
	// ClusterCIDRs are the pod, service and node ranges: traffic to them is never steered or SNATed.
	ClusterCIDRs []netip.Prefix
	// Policies are the EgressPolicies with their currently selected pods.
	Policies []PolicyView
	// EgressLink is this node's dedicated egress interface, if it has one (AWS: the egress ENI that the
	// manager attached). SNATed traffic then leaves through it; without one it leaves through the uplink.
	EgressLink *EgressLink
}

// EgressLink is a network interface that carries a gateway's egress IPs. The cloud drops a packet that
// leaves an interface with an address that is not that interface's (AWS's source/destination check
// works per ENI), so SNATed packets must be routed out of this interface, not the uplink.
type EgressLink struct {
	// MAC identifies the interface on the node (its name depends on the OS image).
	MAC net.HardwareAddr
	// Address is the interface's own primary address and its subnet, for example 10.0.1.17/24.
	Address netip.Prefix
	// Router is the subnet's router, the next hop of everything leaving through the interface.
	Router netip.Addr
}

// NodeInfo is one node.
type NodeInfo struct {
	Name string
	IP   netip.Addr
}

// PolicyView is one EgressPolicy as decided by the manager.
type PolicyView struct {
	// Key names the policy ("namespace/name"); it names the policy's sets (hashed) and rule comments.
	Key string
	// Pods are the running pods the policy selects, on any node.
	Pods []PodRef
	// DestinationCIDRs limits steering to these destinations; empty means every non-cluster destination.
	DestinationCIDRs []netip.Prefix
	// ExcludedCIDRs keep the node's own source address even inside DestinationCIDRs.
	ExcludedCIDRs []netip.Prefix
	// EgressIP is the address the pods leave with; GatewayNode is the node that holds it. While either
	// is unset, or names a node the view does not have, the policy has no usable egress IP: its local
	// pods' traffic toward its destinations is dropped (see FailOpen).
	EgressIP    netip.Addr
	GatewayNode string
	// FailOpen lets the policy's pods leave with their node's address while it has no usable egress IP
	// (the policy's explicit choice of availability over identity). By default their traffic toward the
	// policy's destinations is dropped until the egress IP is back.
	FailOpen bool
}

// PodRef is a selected pod: its IP and the node it runs on.
type PodRef struct {
	IP   netip.Addr
	Node string
}
