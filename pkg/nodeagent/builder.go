package nodeagent

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"strings"
)

// builder accumulates one node's Desired state while DesiredState walks the policies.
type builder struct {
	view     View
	cfg      Config
	self     netip.Addr
	nodeIPs  map[string]netip.Addr
	d        *Desired
	peers    map[netip.Addr]bool
	gateways map[netip.Addr]uint32
	returns  map[netip.Addr]netip.Addr
	sets     map[string]IPSet
}

func newBuilder(view View, cfg Config, self netip.Addr, nodeIPs map[string]netip.Addr) *builder {
	b := &builder{
		view: view, cfg: cfg, self: self, nodeIPs: nodeIPs,
		d:       &Desired{NodeIP: self},
		peers:   map[netip.Addr]bool{},
		returns: map[netip.Addr]netip.Addr{},
		sets:    map[string]IPSet{},
	}
	b.gateways, b.d.Warnings = allocateGateways(b.remoteGateways(), cfg.maxGateways())
	b.addSharedSets()
	b.addEgressLink()
	return b
}

// addEgressLink takes the node's dedicated egress interface into the desired state, if it is usable.
func (b *builder) addEgressLink() {
	e := b.view.EgressLink
	switch {
	case e == nil:
	case len(e.MAC) != 6 || !e.Address.Addr().Is4() || !e.Router.Is4() || !e.Address.Contains(e.Router):
		b.d.Warnings = append(b.d.Warnings, Warning{Reason: ReasonEgressLinkIncomplete, Message: fmt.Sprintf(
			"egress interface (MAC %s, address %s, router %s) is incomplete: SNATed traffic leaves through the uplink",
			e.MAC, e.Address, e.Router)})
	default:
		link := *e
		b.d.Egress = &link
	}
}

// remoteGateways lists the IPs of the gateway nodes that this node's own selected pods are steered to.
func (b *builder) remoteGateways() []netip.Addr {
	seen := map[netip.Addr]bool{}
	for _, p := range b.view.Policies {
		gw, ok := b.nodeIPs[p.GatewayNode]
		if ok && gw != b.self && len(b.localPods(p)) > 0 {
			seen[gw] = true
		}
	}
	return sortedAddrs(seen)
}

// allocateGateways gives each gateway a mark index in 1..max: a hash of its IP, probing upward on a
// collision, in IP order. A gateway keeps its index while others come and go (unless they collide), so
// marks stay stable across restarts and view changes.
func allocateGateways(ips []netip.Addr, max uint32) (map[netip.Addr]uint32, []Warning) {
	out := make(map[netip.Addr]uint32, len(ips))
	used := map[uint32]bool{}
	var warnings []Warning
	for _, ip := range ips {
		if uint32(len(used)) >= max {
			warnings = append(warnings, Warning{Reason: ReasonNoSteeringMark,
				Message: fmt.Sprintf("gateway %s: no steering mark left (the steer mask allows %d gateways)", ip, max)})
			continue
		}
		h := fnv.New32a()
		_, _ = h.Write(ip.AsSlice())
		i := h.Sum32()%max + 1
		for used[i] {
			i = i%max + 1
		}
		used[i] = true
		out[ip] = i
	}
	return out, warnings
}

func (b *builder) addSharedSets() {
	var cluster, nodes []string
	for _, c := range b.view.ClusterCIDRs {
		if c.Addr().Is4() {
			cluster = append(cluster, netMember(c))
		}
	}
	for _, n := range b.view.Nodes {
		if n.IP.Is4() {
			cluster = append(cluster, n.IP.String())
			nodes = append(nodes, n.IP.String())
		}
	}
	b.addSet(setCluster, "hash:net", cluster)
	b.addSet(setNodes, "hash:ip", nodes)
}

// addSet records a set; members are de-duplicated and sorted.
func (b *builder) addSet(name, typ string, members []string) {
	slices.Sort(members)
	b.sets[name] = IPSet{Name: name, Type: typ, Members: slices.Compact(members)}
}

// addPolicy adds the steering rule (this node has selected pods, the IP lives elsewhere) or the SNAT
// rule (the IP lives here) of one policy, or its fail-closed rule when it has no usable egress IP.
func (b *builder) addPolicy(p PolicyView) {
	gw, ok := b.nodeIPs[p.GatewayNode]
	switch {
	case !p.EgressIP.Is4():
		b.block(p, ReasonNoEgressIP, "no IPv4 egress IP placed yet")
	case !ok:
		b.block(p, ReasonUnknownGateway, fmt.Sprintf("gateway node %q is unknown", p.GatewayNode))
	case gw == b.self:
		b.addSNAT(p)
	case len(b.localPods(p)) > 0:
		b.addSteer(p, gw)
	}
}

func (b *builder) warn(p PolicyView, reason, why string) {
	b.d.Warnings = append(b.d.Warnings, Warning{Policy: p.Key, Reason: reason, Message: why})
}

// block fails p closed for its local pods (or, with FailOpen, lets them keep the node's address) and
// says so in a warning.
func (b *builder) block(p PolicyView, reason, why string) {
	pods := b.localPods(p)
	switch {
	case len(pods) == 0:
		b.warn(p, reason, why)
	case p.FailOpen:
		b.warn(p, reason, why+"; the policy fails open: its pods leave with their node's address")
	default:
		b.warn(p, reason, why+fmt.Sprintf("; traffic of its %d pods on this node toward its destinations is dropped", len(pods)))
		b.d.Blocks = append(b.d.Blocks, b.policyMatch(p, pods))
	}
}

func (b *builder) localPods(p PolicyView) []string {
	var out []string
	for _, pod := range p.Pods {
		if pod.Node == b.view.Node && pod.IP.Is4() {
			out = append(out, pod.IP.String())
		}
	}
	return out
}

func (b *builder) addSteer(p PolicyView, gwIP netip.Addr) {
	index, ok := b.gateways[gwIP]
	if !ok {
		b.block(p, ReasonNoSteeringMark, "its gateway has no steering mark")
		return
	}
	r := b.policyMatch(p, b.localPods(p))
	r.Gateway = GatewayRoute{IP: gwIP, Index: index}
	b.d.Steers = append(b.d.Steers, r)
	b.peers[gwIP] = true
}

// addSNAT makes this node the gateway of p: every selected pod with a known node is SNATed, and replies
// to pods of other nodes return through the tunnel.
func (b *builder) addSNAT(p PolicyView) {
	var pods []string
	for _, pod := range p.Pods {
		node, ok := b.nodeIPs[pod.Node]
		if !ok || !pod.IP.Is4() {
			b.warn(p, ReasonUnknownPodNode, fmt.Sprintf("pod %s: node %q unknown, not SNATed (its replies could not return)", pod.IP, pod.Node))
			continue
		}
		pods = append(pods, pod.IP.String())
		if node != b.self {
			b.returns[pod.IP] = node
			b.peers[node] = true
		}
	}
	r := b.policyMatch(p, pods)
	r.EgressIP = p.EgressIP
	b.d.SNATs = append(b.d.SNATs, r)
}

// policyMatch creates the policy's sets: sources, and destinations/exclusions when it has any.
func (b *builder) policyMatch(p PolicyView, pods []string) PolicyRule {
	r := PolicyRule{Policy: p.Key, Src: setName("s", p.Key)}
	b.addSet(r.Src, "hash:ip", pods)
	if dst, all := cidrMembers(p.DestinationCIDRs); !all && len(dst) > 0 {
		r.Dst = setName("d", p.Key)
		b.addSet(r.Dst, "hash:net", dst)
	}
	if exc, _ := cidrMembers(p.ExcludedCIDRs); len(exc) > 0 {
		r.Excluded = setName("x", p.Key)
		b.addSet(r.Excluded, "hash:net", exc)
	}
	return r
}

// cidrMembers renders IPv4 CIDRs as set members; all reports a /0, which a hash:net set cannot hold and
// which means "every destination" anyway.
func cidrMembers(cidrs []netip.Prefix) (members []string, all bool) {
	for _, c := range cidrs {
		switch {
		case !c.Addr().Is4():
		case c.Bits() == 0:
			all = true
		default:
			members = append(members, netMember(c))
		}
	}
	return members, all
}

// finish sorts everything into the Desired value.
func (b *builder) finish() *Desired {
	d := b.d
	for _, ip := range sortedAddrs(b.peers) {
		d.Peers = append(d.Peers, Peer{IP: ip, MAC: tunnelMAC(ip)})
	}
	for ip, i := range b.gateways {
		if b.peers[ip] {
			d.Gateways = append(d.Gateways, GatewayRoute{IP: ip, Index: i})
		}
	}
	slices.SortFunc(d.Gateways, func(x, y GatewayRoute) int { return x.IP.Compare(y.IP) })
	for pod, node := range b.returns {
		d.Returns = append(d.Returns, ReturnRoute{Pod: pod, Node: node})
	}
	slices.SortFunc(d.Returns, func(x, y ReturnRoute) int { return x.Pod.Compare(y.Pod) })
	for _, s := range b.sets {
		d.Sets = append(d.Sets, s)
	}
	slices.SortFunc(d.Sets, func(x, y IPSet) int { return strings.Compare(x.Name, y.Name) })
	return d
}

func sortedAddrs(m map[netip.Addr]bool) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for ip := range m {
		out = append(out, ip)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// netMember writes a CIDR the way `nft list` prints a member of an interval set: a /32 as a bare address, so
// that the next diff sees the same string and does not delete the entry it just added.
func netMember(p netip.Prefix) string {
	if p.Bits() == 32 {
		return p.Addr().String()
	}
	return p.Masked().String()
}
