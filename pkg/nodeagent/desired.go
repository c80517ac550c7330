package nodeagent

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// Desired is the datapath one node should have. DesiredState computes it; Datapath.Apply makes the
// kernel match it. All slices are sorted, so equal views give equal values.
type Desired struct {
	// NodeIP is this node's tunnel endpoint.
	NodeIP netip.Addr
	// Peers are the nodes this node exchanges tunnel traffic with: its gateways and, on a gateway, the
	// nodes of the pods it serves. Each gets a static FDB and neighbour entry.
	Peers []Peer
	// Gateways are the gateway nodes local pods are steered to, each with its mark and table.
	Gateways []GatewayRoute
	// Steers are the marking rules for local pods whose egress IP lives on another node.
	Steers []PolicyRule
	// SNATs are the gateway rules for policies whose egress IP lives here.
	SNATs []PolicyRule
	// Returns route replies to remote pods back through the tunnel to their node (gateway side).
	Returns []ReturnRoute
	// Sets are the sets of egressgw's nftables table that the rules match on.
	Sets []IPSet
	// Blocks are the fail-closed rules: local selected pods of policies without a usable egress IP, whose
	// traffic toward the policy's destinations is dropped rather than sent with the node's address.
	Blocks []PolicyRule
	// Egress is the dedicated interface SNATed traffic leaves through; nil means the uplink.
	Egress *EgressLink
	// Warnings say what the view asked for that cannot be programmed as asked, and why.
	Warnings []Warning
}

// Warning is one thing the view asked for that the datapath cannot do as asked. The agent turns it
// into a log line, a metric and the policy's status.
type Warning struct {
	// Policy is the policy's key ("namespace/name"); empty for node-wide warnings.
	Policy string
	// Reason is a CamelCase cause, stable for metrics: NoEgressIP, UnknownGateway, NoSteeringMark,
	// UnknownPodNode, EgressLinkIncomplete.
	Reason string
	// Message says what happens and why, for a person.
	Message string
}

// Reasons of warnings.
const (
	ReasonNoEgressIP           = "NoEgressIP"
	ReasonUnknownGateway       = "UnknownGateway"
	ReasonNoSteeringMark       = "NoSteeringMark"
	ReasonUnknownPodNode       = "UnknownPodNode"
	ReasonEgressLinkIncomplete = "EgressLinkIncomplete"
)

func (w Warning) String() string {
	if w.Policy == "" {
		return w.Reason + ": " + w.Message
	}
	return "policy " + w.Policy + ": " + w.Reason + ": " + w.Message
}

// Peer is a node at the other end of the tunnel; MAC is the deterministic address of its egressgw device.
type Peer struct {
	IP  netip.Addr
	MAC net.HardwareAddr
}

// GatewayRoute is a gateway node as seen from a source node: packets marked with Index go to table
// TableBase+Index, whose default route points through the tunnel at IP.
type GatewayRoute struct {
	IP    netip.Addr
	Index uint32
}

// ReturnRoute sends replies for Pod through the tunnel to the node at Node.
type ReturnRoute struct {
	Pod  netip.Addr
	Node netip.Addr
}

// PolicyRule is one policy's match (source set, optional destination and exclusion sets) and where it
// goes: to Gateway (steering) or out as EgressIP (SNAT).
type PolicyRule struct {
	Policy   string
	Src      string
	Dst      string // empty: every non-cluster destination
	Excluded string // empty: nothing excluded beyond the cluster
	Gateway  GatewayRoute
	EgressIP netip.Addr
}

// IPSet is one set and its members ("10.0.0.1", "192.0.2.0/24"). Type keeps ipset's names: "hash:ip"
// is an nft set of addresses, "hash:net" an nft interval set of CIDRs.
type IPSet struct {
	Name    string
	Type    string
	Members []string
}

// Names of the shared sets.
const (
	setCluster = "egressgw-cluster" // cluster CIDRs and node IPs: never steered, never SNATed
	setNodes   = "egressgw-nodes"   // node IPs: the only senders the VXLAN port accepts
)

// DesiredState turns the cluster view into the desired datapath of view.Node. It is pure: it reads
// nothing but its arguments, and it never fails on a policy it cannot program (that becomes a warning);
// it fails only when this node itself is unknown.
func DesiredState(view View, cfg Config) (*Desired, error) {
	nodeIPs := make(map[string]netip.Addr, len(view.Nodes))
	for _, n := range view.Nodes {
		nodeIPs[n.Name] = n.IP
	}
	self, ok := nodeIPs[view.Node]
	if !ok || !self.Is4() {
		return nil, fmt.Errorf("node %q has no IPv4 address in the view", view.Node)
	}
	b := newBuilder(view, cfg, self, nodeIPs)
	for _, p := range sortedPolicies(view.Policies) {
		b.addPolicy(p)
	}
	return b.finish(), nil
}

func sortedPolicies(ps []PolicyView) []PolicyView {
	out := slices.Clone(ps)
	slices.SortFunc(out, func(a, b PolicyView) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// setName derives a short, stable set name (31 characters at most) from the policy key. The prefix keeps
// it clear of nft's keywords.
func setName(kind, policyKey string) string {
	sum := sha256.Sum256([]byte(policyKey))
	return "egressgw-" + kind + "-" + hex.EncodeToString(sum[:6])
}

// tunnelMAC is the deterministic MAC of the egressgw device of the node at ip: locally administered,
// unicast, 0e:67 followed by the IPv4 address, so every agent computes the same one.
func tunnelMAC(ip netip.Addr) net.HardwareAddr {
	a := ip.As4()
	return net.HardwareAddr{0x0e, 0x67, a[0], a[1], a[2], a[3]}
}
