// Package providers defines how the egressgw manager talks to a cloud: the Provider contract that every
// cloud implementation (providers/aws, ...) fulfils, the sentinel errors it returns, and the value types it
// exchanges. The manager never calls a cloud SDK directly.
//
// Every method is idempotent and level-based: it makes the cloud match the request and treats "already so"
// as success, because the manager may crash between a cloud call and recording its outcome, and the next
// leader repeats the call. Errors wrap one of the sentinels in errors.go together with the cloud's own error
// code, so callers branch with errors.Is and show the message to a person.
package providers

import (
	"context"
	"net/netip"
)

// Node names a Kubernetes Node the way a provider needs it.
type Node struct {
	// Name is the Node object's name, for messages and logs.
	Name string
	// ProviderID is spec.providerID, for example aws:///us-east-1a/i-0abc.
	ProviderID string
	// Addresses are the Node's InternalIP addresses; providers that cannot find the instance from the
	// providerID alone may use them.
	Addresses []netip.Addr
}

// NodeInfo is the cloud's view of the place where a node's egress IPs attach.
type NodeInfo struct {
	// Instance is the cloud's instance ID (AWS i-...).
	Instance string
	// Interface is the NIC that carries egress IPs (AWS: the gateway's dedicated ENI, or the primary ENI at
	// device index 0 in the primary-interface mode).
	Interface string
	// Zone is the instance's availability zone.
	Zone string
	// SubnetID and Subnet are the NIC's subnet; an egress IP must lie inside Subnet.
	SubnetID string
	Subnet   netip.Prefix
	// Capacity is how many IPv4 addresses the NIC can hold in total, its primary address included (AWS:
	// IPv4 addresses per interface of the instance type).
	Capacity int
	// Addresses are the IPv4 addresses the NIC holds now, primary first. Other tools' addresses (a CNI's warm
	// pool) count against Capacity just like egress IPs.
	Addresses []netip.Addr
	// Prefixes are address ranges delegated to the NIC as a whole (AWS prefix delegation: /28 prefixes), each
	// of which takes one address slot of Capacity. Empty on clouds without them.
	Prefixes []netip.Prefix

	// What the node agent needs to bring the NIC up and route egress traffic out through it. Zero values
	// where a cloud does not say.

	// Dedicated is true when the NIC is a secondary NIC used for egress IPs only (AWS: the gateway ENI that
	// the VPC CNI does not manage), which the agent must bring up and route SNATed traffic through; false
	// when egress IPs sit on the node's primary NIC next to the node's own address.
	Dedicated bool
	// MAC is the NIC's hardware address, by which the agent finds its Linux interface.
	MAC string
	// PrimaryIP is the NIC's own address (Addresses[0]), never an egress IP; the agent puts it on the
	// interface as the source of the NIC's own traffic (ARP, the route to the gateway).
	PrimaryIP netip.Addr
	// Gateway is the router of the NIC's subnet (AWS: the subnet's network address + 1), the next hop of the
	// agent's egress route table.
	Gateway netip.Addr
}

// Free is how many more addresses the NIC can take.
func (n NodeInfo) Free() int {
	return max(0, n.Capacity-len(n.Addresses)-len(n.Prefixes))
}

// Assignment is one egress IP and, optionally, the public IP that must follow it.
type Assignment struct {
	IP netip.Addr
	// PublicIP is the provider's handle of a public IP to associate with IP (AWS: an Elastic IP allocation
	// ID, eipalloc-...). Empty means none.
	PublicIP string
}

// Location is where the cloud currently has an IP.
type Location struct {
	IP netip.Addr
	// Instance is the instance the NIC is attached to; empty for a detached NIC.
	Instance string
	// Interface is the NIC holding the IP.
	Interface string
	// Primary is true when IP is the NIC's primary address, which can never serve as an egress IP.
	Primary bool
	// PublicIP and PublicIPID describe the public IP associated with IP, if any.
	PublicIP   netip.Addr
	PublicIPID string
	// InUse, when set, says why the IP is not egressgw's to move (for a person): the NIC holding it is not
	// an egress NIC of this cluster (a pod's address on a NIC the CNI manages, another tool's, a primary
	// address), or the IP was found in two networks and the provider cannot tell which is the cluster's
	// (then Interface and Instance are empty). Such an IP is reported, never taken: Assign and Move refuse
	// it with ErrIPInUse. Providers that cannot tell leave it empty.
	//
	// An IP with InUse empty that is not a NIC's primary address is egressgw's wherever it is: on an
	// instance that is no node of the cluster any more (its Node deleted while the VM runs on) the manager
	// takes it back, releasing it there (InstanceNode names the instance) or moving it (Mover). A provider
	// must therefore set InUse for every holder it can tell is not egressgw's.
	InUse string
}

// Provider attaches egress IPs to nodes through a cloud's API.
//
// Implementations are safe for concurrent use. Every method honours ctx: retries of throttled or failed
// cloud calls stop when ctx is done, and the error then wraps the last cloud error (ErrThrottled or
// ErrUnavailable) as well as ctx.Err().
type Provider interface {
	// DescribeNode returns where node's egress IPs attach and how much room is left there. It always asks
	// the cloud (no cached addresses), so the result is fit for capacity decisions.
	// Errors: ErrUnsupportedNode (providerID not of this cloud), ErrNotFound (instance gone or terminated,
	// or, on an Attacher, its egress NIC not made yet), ErrThrottled, ErrUnavailable, ErrPermanent.
	DescribeNode(ctx context.Context, node Node) (NodeInfo, error)

	// Assign makes the cloud hold a.IP on node's egress NIC and, if a.PublicIP is set, associates that
	// public IP with a.IP; with a.PublicIP empty, a public IP still associated with a.IP is removed (the
	// spec stopped naming one). Assigning what is already there returns nil without a mutating call. Assign never
	// takes an IP away from another node: that is ErrAssignedElsewhere (use a Mover, or Release first);
	// while the cloud's reads lag a recent write, the refusal may instead come as ErrPermanent with the
	// cloud's own message ("in use"). An IP held by a NIC that is not egressgw's is ErrIPInUse as well.
	// Either way nothing moved.
	// Errors: ErrOutsideSubnet, ErrAssignedElsewhere, ErrIPInUse, ErrCapacityExhausted, ErrNotFound (node or public IP),
	// ErrUnsupportedNode, ErrThrottled, ErrUnavailable, ErrPermanent.
	Assign(ctx context.Context, node Node, a Assignment) error

	// Release removes a.IP from node's egress NIC, and its public IP association with it. An IP that is not
	// on node (nowhere, or on another node) is left alone and Release returns nil: it never touches another
	// node. Refuses (ErrPermanent) to remove the NIC's primary address.
	// Errors: ErrNotFound (node), ErrUnsupportedNode, ErrThrottled, ErrUnavailable, ErrPermanent.
	Release(ctx context.Context, node Node, a Assignment) error

	// Locate reports where the cloud has each of ips now, for recovery after a crash. IPs held nowhere are
	// absent from the map. An IP the provider cannot answer for alone (found in two networks) is reported
	// with Location.InUse set, never as an error of the whole call. Reads only; eventual consistency of the
	// cloud applies (a write of the last seconds may not be visible yet).
	// Errors: ErrThrottled, ErrUnavailable, ErrPermanent.
	Locate(ctx context.Context, ips []netip.Addr) (map[netip.Addr]Location, error)

	// InstanceOf returns the instance a Node's providerID names, spelled as NodeInfo.Instance and
	// Location.Instance spell it, without calling the cloud: how the manager finds the node of an instance
	// that Locate reports. The providerID forms are the provider's knowledge, not the manager's.
	// Errors: ErrUnsupportedNode (not a providerID of this cloud), naming what is wrong.
	InstanceOf(providerID string) (string, error)

	// InstanceNode is the reverse of InstanceOf: a Node for instance (as Location.Instance spells it) that
	// the provider's methods accept, without calling the cloud, so that an IP can be released from an
	// instance whose Node object is gone. Name is a short name of the instance, for messages.
	// Errors: ErrUnsupportedNode (not an instance name of this cloud).
	InstanceNode(instance string) (Node, error)
}

// Mover is the optional capability of clouds that move IPs between nodes in one call, found by type
// assertion on a Provider. Without it, a move is Release on the old node, then Assign on the new one.
type Mover interface {
	// Move takes ips to node's egress NIC wherever they are now (another node, or nowhere), in as few cloud
	// calls as the cloud allows, and public IPs associated with them follow. IPs already on node stay.
	// After an error the IPs may or may not have moved (a lost response looks like a failure): repeat the
	// Move, which is idempotent, or Locate them. Refuses (ErrPermanent) to take a NIC's primary address,
	// and (ErrIPInUse) any IP held by a NIC that is not an egress NIC of this cluster; nothing moves then.
	// Errors: ErrOutsideSubnet (naming every IP outside node's subnet), ErrIPInUse (naming every IP in
	// use), ErrCapacityExhausted, ErrNotFound, ErrUnsupportedNode, ErrThrottled, ErrUnavailable,
	// ErrPermanent.
	Move(ctx context.Context, node Node, ips []netip.Addr) error
}

// Attacher is the optional capability of clouds whose egress NIC is a resource of its own that egressgw
// creates for a gateway node (AWS: a secondary ENI the VPC CNI leaves alone), found by type assertion on a
// Provider. The manager ensures the NIC on every gateway candidate before placement needs it, so that a
// failover never waits for a NIC to be created, and removes it when the node stops being a gateway.
type Attacher interface {
	// EnsureAttachment makes the node's egress NIC exist and be attached (finding the one it made before,
	// or one the operator provisioned, before it creates any) and returns what DescribeNode returns. Two
	// callers at once, or a caller repeating after a crash, never leave two NICs.
	// Errors: those of DescribeNode, and ErrCapacityExhausted when the instance cannot take another NIC.
	EnsureAttachment(ctx context.Context, node Node) (NodeInfo, error)

	// RemoveAttachment detaches and deletes the egress NIC that egressgw created for node, when it holds no
	// egress IPs any more (ErrPermanent naming them otherwise); a NIC the operator provisioned stays. A node
	// whose instance is gone is fine: the cloud deleted the NIC with it.
	// Errors: ErrPermanent, ErrUnsupportedNode, ErrThrottled, ErrUnavailable.
	RemoveAttachment(ctx context.Context, node Node) error

	// Attachments lists the instances that have an egress NIC egressgw created (attached or left over), so
	// that a new leader can remove those of nodes that stopped being gateways while no manager ran. Each is
	// a Node as the cloud knows it: Name is the instance ID, ProviderID a providerID naming it.
	// Errors: ErrThrottled, ErrUnavailable, ErrPermanent.
	Attachments(ctx context.Context) ([]Node, error)
}
