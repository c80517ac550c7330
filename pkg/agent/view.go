package agent

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/nodeagent"
)

// Inputs is what the agent's caches hold, as the view builder reads it. BuildView reads nothing else.
type Inputs struct {
	// Node is the name of this node.
	Node string
	// Nodes are every Node of the cluster (stripped: name, labels, InternalIP, podCIDRs).
	Nodes []*corev1.Node
	// Policies and Gateways are every EgressPolicy and EgressGateway.
	Policies []*egressgwv1.EgressPolicy
	Gateways []*egressgwv1.EgressGateway
	// PodsIn returns the known pods of a namespace (this node's own, and on a gateway candidate every
	// node's), the CNI overlay already merged in.
	PodsIn func(namespace string) []*PodInfo
	// ClusterCIDRs are the ranges from the agent's flags; ServiceCIDRs those the cluster's ServiceCIDR
	// objects name. Node podCIDRs and InternalIPs are added by BuildView.
	ClusterCIDRs []netip.Prefix
	ServiceCIDRs []netip.Prefix
}

// Problem is something in the inputs BuildView could not use, for a log line.
type Problem struct {
	Object  string // "EgressPolicy payments/to-db", "Node n1"
	Message string
}

// BuildView turns the caches into the datapath's view of inputs.Node. It is pure and never fails: what
// it cannot use becomes a Problem and, for a policy, a PolicyView without egress IP (fail closed, or
// fail open when the policy says whenUnavailable: UseNodeIP).
func BuildView(in Inputs) (nodeagent.View, []Problem) {
	v := nodeagent.View{Node: in.Node}
	var problems []Problem
	v.Nodes, v.ClusterCIDRs, problems = nodesAndRanges(in)
	gateways := make(map[string]*egressgwv1.EgressGateway, len(in.Gateways))
	for _, g := range in.Gateways {
		gateways[g.Name] = g
	}
	for _, p := range in.Policies {
		if p.DeletionTimestamp != nil {
			continue // being deleted: its pods go back to their node's address, as once it is gone
		}
		pv, probs := policyView(p, gateways[p.Spec.GatewayName], in.PodsIn)
		v.Policies = append(v.Policies, pv)
		problems = append(problems, probs...)
	}
	v.EgressLink, problems = egressLink(in, problems)
	return v, problems
}

// nodesAndRanges lists the nodes with an IPv4 InternalIP, and the cluster ranges: the flags', the
// ServiceCIDRs' and every node's podCIDRs (the node IPs are added by the datapath itself).
func nodesAndRanges(in Inputs) ([]nodeagent.NodeInfo, []netip.Prefix, []Problem) {
	var nodes []nodeagent.NodeInfo
	var problems []Problem
	ranges := slices.Concat(in.ClusterCIDRs, in.ServiceCIDRs)
	for _, n := range in.Nodes {
		ip, ok := nodeInternalIPv4(n)
		if !ok {
			problems = append(problems, Problem{"Node " + n.Name, "no IPv4 InternalIP: it cannot be a tunnel peer"})
		} else {
			nodes = append(nodes, nodeagent.NodeInfo{Name: n.Name, IP: ip})
		}
		for _, c := range n.Spec.PodCIDRs {
			if p, err := netip.ParsePrefix(c); err == nil && p.Addr().Is4() {
				ranges = append(ranges, p.Masked())
			}
		}
	}
	slices.SortFunc(nodes, func(a, b nodeagent.NodeInfo) int { return cmp.Compare(a.Name, b.Name) })
	return nodes, sortedPrefixes(ranges), problems
}

func nodeInternalIPv4(n *corev1.Node) (netip.Addr, bool) {
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is4() {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// policyView is one policy: its selected pods, its CIDRs, and its egress IP if it is usable.
func policyView(p *egressgwv1.EgressPolicy, gw *egressgwv1.EgressGateway, podsIn func(string) []*PodInfo) (nodeagent.PolicyView, []Problem) {
	key := p.Namespace + "/" + p.Name
	pv := nodeagent.PolicyView{Key: key, FailOpen: p.Spec.WhenUnavailable == egressgwv1.UnavailableUseNodeIP}
	var problems []Problem
	obj := "EgressPolicy " + key
	var err error
	if pv.DestinationCIDRs, err = parsePrefixes(p.Spec.DestinationCIDRs); err != nil {
		problems = append(problems, Problem{obj, "destinationCIDRs: " + err.Error()})
	}
	if pv.ExcludedCIDRs, err = parsePrefixes(p.Spec.ExcludedCIDRs); err != nil {
		problems = append(problems, Problem{obj, "excludedCIDRs: " + err.Error()})
	}
	sel, err := p.Spec.PodSelector.Selector()
	if err != nil {
		// The API validates selectors; one that still fails selects nothing rather than everything.
		problems = append(problems, Problem{obj, "podSelector: " + err.Error() + "; no pod is selected"})
		sel = labels.Nothing()
	}
	if len(p.Spec.DestinationCIDRs) > 0 && len(pv.DestinationCIDRs) == 0 {
		// No destination left would mean "every destination": a policy broader than written.
		problems = append(problems, Problem{obj, "no usable destinationCIDRs; no pod is selected"})
		sel = labels.Nothing()
	}
	pv.Pods = selectedPods(podsIn(p.Namespace), sel)
	if ip, node, ok := usableEgressIP(p, gw); ok {
		pv.EgressIP, pv.GatewayNode = ip, node
	}
	return pv, problems
}

// usableEgressIP is the policy's egress IP and gateway node when the policy is Accepted, its status names
// both, and its gateway's status says the IP is Assigned on that same node. Anything else (not admitted,
// unplaced, moving, gateway gone) leaves the policy without an egress IP, which the datapath turns into
// the fail-closed drop: a source node never steers to a gateway that may not hold the IP.
func usableEgressIP(p *egressgwv1.EgressPolicy, gw *egressgwv1.EgressGateway) (netip.Addr, string, bool) {
	if gw == nil || !meta.IsStatusConditionTrue(p.Status.Conditions, egressgwv1.ConditionAccepted) {
		return netip.Addr{}, "", false
	}
	ip, err := netip.ParseAddr(p.Status.EgressIP)
	if err != nil || !ip.Is4() || p.Status.GatewayNode == "" {
		return netip.Addr{}, "", false
	}
	for _, a := range gw.Status.Assignments {
		if a.IP == p.Status.EgressIP {
			ok := a.State == egressgwv1.AssignmentAssigned && a.Node == p.Status.GatewayNode
			return ip, p.Status.GatewayNode, ok
		}
	}
	return netip.Addr{}, "", false
}

// selectedPods are the pods sel matches that can send traffic: scheduled, not host-network, not finished,
// with an IPv4 address. Terminating pods stay selected until they are gone: they keep sending during
// their grace period, and unselecting them would let those packets leave with the node's address.
func selectedPods(pods []*PodInfo, sel labels.Selector) []nodeagent.PodRef {
	var out []nodeagent.PodRef
	for _, pod := range pods {
		if !pod.canSend() || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		for _, ip := range pod.IPs {
			out = append(out, nodeagent.PodRef{IP: ip, Node: pod.NodeName})
		}
	}
	slices.SortFunc(out, func(a, b nodeagent.PodRef) int { return a.IP.Compare(b.IP) })
	return slices.Compact(out)
}

// egressLink is this node's egress interface from the gateways' status.nodes (the manager writes the
// same interface into every gateway that lists the node; the first complete one wins).
func egressLink(in Inputs, problems []Problem) (*nodeagent.EgressLink, []Problem) {
	for _, g := range in.Gateways {
		for _, n := range g.Status.Nodes {
			if n.Name != in.Node || n.EgressInterface == nil {
				continue
			}
			link, err := parseEgressInterface(*n.EgressInterface)
			if err != nil {
				problems = append(problems, Problem{"EgressGateway " + g.Name, "status.nodes[" + n.Name + "].egressInterface: " + err.Error()})
				continue
			}
			return link, problems
		}
	}
	return nil, problems
}

func parseEgressInterface(e egressgwv1.EgressInterface) (*nodeagent.EgressLink, error) {
	mac, err := net.ParseMAC(e.MAC)
	if err != nil {
		return nil, fmt.Errorf("mac %q: %w", e.MAC, err)
	}
	addr, err := netip.ParsePrefix(e.Address)
	if err != nil {
		return nil, fmt.Errorf("address %q: want an address with its prefix length: %w", e.Address, err)
	}
	router, err := netip.ParseAddr(e.Router)
	if err != nil {
		return nil, fmt.Errorf("router %q: %w", e.Router, err)
	}
	return &nodeagent.EgressLink{MAC: mac, Address: addr, Router: router}, nil
}

// parsePrefixes parses the IPv4 CIDRs and names the entries it skipped (the API refuses them; this
// guards against objects written before a validation existed).
func parsePrefixes(cidrs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cidrs))
	var bad []string
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil || !p.Addr().Is4() {
			bad = append(bad, c)
			continue
		}
		out = append(out, p.Masked())
	}
	if len(bad) > 0 {
		return out, fmt.Errorf("skipped %q: not IPv4 CIDRs", bad)
	}
	return out, nil
}

func sortedPrefixes(ps []netip.Prefix) []netip.Prefix {
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(ps)
}
