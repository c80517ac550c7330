// Package failover decides where each egress IP lives and when it moves. Its decisions are pure
// functions of what the cluster and the cloud say, so that every manager replica would decide the same,
// and so that they can be tested without a cluster.
package failover

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"time"
)

// Node is a gateway node as placement sees it.
type Node struct {
	Name string
	// Subnets are the subnets in which the cloud lets the node hold an egress IP (on AWS, the subnet of
	// its primary network interface). A node the provider could not resolve has none.
	Subnets []netip.Prefix
	// Free is how many more IPs the node's interface can take now, counting every address already on
	// it, ours included: an IP that stays where it is costs nothing, a new one costs one.
	Free int
	// Ineligible is empty when the node may hold egress IPs, and otherwise says why it may not (for
	// example "NotReady", "Cordoned", "Deleting", "AgentUnreachable"). It appears in messages verbatim.
	Ineligible string
	// Unconfirmed marks an ineligible node whose failure only the manager's own probes see, while the
	// cluster says it is alive (Ready, its Lease renewed): it keeps the IPs it holds when no eligible
	// node can take them, since moving nowhere would only stop traffic that may well be flowing.
	Unconfirmed bool
	// NoNewIPs keeps an eligible node from taking IPs it does not hold: its last probe failed (it may be
	// failing, and a failover onto it would cascade), or it recovered only moments ago.
	NoNewIPs bool
}

// Gateway is one EgressGateway's part of the input.
type Gateway struct {
	Name string
	// Created decides which gateway owns an IP that two gateways list: the older one.
	Created time.Time
	IPs     []netip.Addr
	// Nodes are the names of the nodes that match the gateway's nodeSelector.
	Nodes []string
	// Current says which node holds each IP now, as far as the cloud and the status know.
	Current map[netip.Addr]string
}

// Input is everything placement needs: all gateway nodes (a node may serve several gateways and
// shares its free capacity between them) and all gateways.
type Input struct {
	Nodes    map[string]Node
	Gateways []Gateway
}

// Reasons a Decision gives for an IP it could not place. They appear in conditions and Events.
const (
	ReasonNoGatewayNodes    = "NoGatewayNodes"
	ReasonNoEligibleNode    = "NoEligibleNode"
	ReasonNoNodeInSubnet    = "NoNodeInSubnet"
	ReasonCapacityExhausted = "CapacityExhausted"
	ReasonIPConflict        = "IPConflict"
	// ReasonKeptOnUnconfirmed comes with a Decision that keeps an IP on its Unconfirmed node.
	ReasonKeptOnUnconfirmed = "KeptOnUnconfirmedNode"
)

// Decision is where one egress IP should live.
type Decision struct {
	Gateway string
	IP      netip.Addr
	// Node is the chosen node, or empty when the IP cannot be placed; Reason and Message then say why.
	Node    string
	Reason  string
	Message string
	// Previous is the node that held the IP before, if any; Node != Previous means a move.
	Previous string
}

// Moves reports whether the decision asks for the IP to go somewhere it is not.
func (d Decision) Moves() bool { return d.Node != "" && d.Node != d.Previous }

// Place decides a node for every egress IP of every gateway.
//
// An IP stays on its current node while that node is eligible, matches the gateway and holds the IP's
// subnet (stickiness: a healthy assignment never moves, and an IP does not return to a node that
// recovers). Every other IP goes to the eligible node in its subnet with free capacity that holds the
// fewest IPs of the same gateway, then the fewest IPs overall, ties broken by a hash of IP and node, so
// that IPs spread and every replica chooses alike. Decisions come sorted by gateway name, then IP.
func Place(in Input) []Decision {
	p := newPlacer(in)
	gateways := slices.SortedFunc(slices.Values(in.Gateways), func(a, b Gateway) int { return cmp.Compare(a.Name, b.Name) })
	owner := Owners(gateways)
	var pending []*Decision
	var out []*Decision
	for _, gw := range gateways {
		for _, ip := range sortedIPs(gw.IPs) {
			d := &Decision{Gateway: gw.Name, IP: ip, Previous: gw.Current[ip]}
			out = append(out, d)
			if owner[ip] != gw.Name {
				d.Reason = ReasonIPConflict
				d.Message = fmt.Sprintf("%s is also an egress IP of gateway %s, which is older and keeps it; remove it from one of them", ip, owner[ip])
				continue
			}
			if p.canStay(gw, ip, d.Previous) {
				p.hold(gw.Name, d.Previous, false)
				d.Node = d.Previous
				continue
			}
			pending = append(pending, d)
		}
	}
	// Sticky IPs are counted first, so that the spread of the others sees them.
	byName := gatewaysByName(gateways)
	for _, d := range pending {
		p.choose(byName[d.Gateway], d)
	}
	return derefAll(out)
}

// Owners gives each IP to the oldest gateway that lists it (then the first by name), so that an IP
// listed twice is placed once. Place applies it; callers that must know an IP's owner before placing
// (to read the IP's spec, or to release IPs nobody owns) use it too, so that the rule lives here only.
func Owners(gateways []Gateway) map[netip.Addr]string {
	byName := slices.SortedFunc(slices.Values(gateways), func(a, b Gateway) int { return cmp.Compare(a.Name, b.Name) })
	byAge := slices.SortedStableFunc(slices.Values(byName), func(a, b Gateway) int { return a.Created.Compare(b.Created) })
	owner := map[netip.Addr]string{}
	for _, gw := range byAge {
		for _, ip := range gw.IPs {
			if _, taken := owner[ip]; !taken {
				owner[ip] = gw.Name
			}
		}
	}
	return owner
}

type placer struct {
	nodes   map[string]Node
	free    map[string]int
	load    map[string]int            // IPs per node, all gateways
	gwLoad  map[string]map[string]int // IPs per gateway and node
	members map[string]map[string]bool
}

func newPlacer(in Input) *placer {
	p := &placer{nodes: in.Nodes, free: map[string]int{}, load: map[string]int{},
		gwLoad: map[string]map[string]int{}, members: map[string]map[string]bool{}}
	for name, n := range in.Nodes {
		p.free[name] = n.Free
	}
	for _, gw := range in.Gateways {
		p.gwLoad[gw.Name] = map[string]int{}
		p.members[gw.Name] = map[string]bool{}
		for _, n := range gw.Nodes {
			p.members[gw.Name][n] = true
		}
	}
	return p
}

func (p *placer) canStay(gw Gateway, ip netip.Addr, node string) bool {
	n, ok := p.nodes[node]
	return ok && p.members[gw.Name][node] && n.Ineligible == "" && inSubnets(n.Subnets, ip)
}

// hold records an IP on a node; newIP says it takes one of the node's free slots.
func (p *placer) hold(gateway, node string, newIP bool) {
	p.load[node]++
	p.gwLoad[gateway][node]++
	if newIP {
		p.free[node]--
	}
}

func (p *placer) choose(gw Gateway, d *Decision) {
	var candidates []string
	for _, name := range gw.Nodes {
		n, ok := p.nodes[name]
		if ok && n.Ineligible == "" && !n.NoNewIPs && inSubnets(n.Subnets, d.IP) && p.free[name] > 0 {
			candidates = append(candidates, name)
		}
	}
	if len(candidates) == 0 {
		d.Reason, d.Message = p.whyUnplaced(gw, d.IP)
		if prev, ok := p.nodes[d.Previous]; ok && prev.Unconfirmed && p.members[gw.Name][d.Previous] && inSubnets(prev.Subnets, d.IP) {
			p.hold(gw.Name, d.Previous, false)
			d.Node, d.Reason = d.Previous, ReasonKeptOnUnconfirmed
			d.Message = fmt.Sprintf("kept on %s, whose agent does not answer the manager but whose Node is Ready and Lease renewed, because %s",
				d.Previous, d.Message)
		}
		return
	}
	best := slices.MinFunc(candidates, func(a, b string) int {
		return cmp.Or(
			cmp.Compare(p.gwLoad[gw.Name][a], p.gwLoad[gw.Name][b]),
			cmp.Compare(p.load[a], p.load[b]),
			cmp.Compare(rank(d.IP, a), rank(d.IP, b)),
			cmp.Compare(a, b),
		)
	})
	p.hold(gw.Name, best, true)
	d.Node = best
}

// rank orders nodes for one IP by a hash of both, so that the tie-break differs per IP (and spreads)
// but is the same on every replica.
func rank(ip netip.Addr, node string) uint64 {
	h := fnv.New64a()
	h.Write(ip.AsSlice())
	h.Write([]byte(node))
	return h.Sum64()
}

func inSubnets(subnets []netip.Prefix, ip netip.Addr) bool {
	return slices.ContainsFunc(subnets, func(s netip.Prefix) bool { return s.Contains(ip) })
}

func sortedIPs(ips []netip.Addr) []netip.Addr {
	return slices.SortedFunc(slices.Values(ips), netip.Addr.Compare)
}

func gatewaysByName(gws []Gateway) map[string]Gateway {
	m := make(map[string]Gateway, len(gws))
	for _, gw := range gws {
		m[gw.Name] = gw
	}
	return m
}

func derefAll(ds []*Decision) []Decision {
	out := make([]Decision, len(ds))
	for i, d := range ds {
		out[i] = *d
	}
	return out
}
