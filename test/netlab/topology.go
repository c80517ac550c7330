package netlab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"unicode"
)

// The address plan. Everything lives inside the lab's namespaces, so the ranges cannot clash with the
// machine's own.
var (
	// VPCSubnet is the node subnet; the fabric router is RouterIP.
	VPCSubnet = netip.MustParsePrefix("10.0.0.0/24")
	RouterIP  = netip.MustParseAddr("10.0.0.1")
	// PodSupernet holds every node's pod CIDR (10.244.N.0/24 for node N) in the profiles whose pods
	// are not VPC addresses.
	PodSupernet = netip.MustParsePrefix("10.244.0.0/16")
	// VPCCIDR is the whole VPC (VNet): the node subnet and, in the profiles whose pods take VPC
	// addresses, the pods' secondary IPs (10.0.N.0/24 for node N).
	VPCCIDR = netip.MustParsePrefix("10.0.0.0/16")
	// ServiceCIDR is a cluster range nothing answers on; it only has to be excluded from steering.
	ServiceCIDR = netip.MustParsePrefix("10.96.0.0/16")
	// ExternalSubnet is "the internet": the external host is ServerIP, reached through the router.
	ExternalSubnet = netip.MustParsePrefix("198.51.100.0/24")
	ServerIP       = netip.MustParseAddr("198.51.100.10")
	// AltServerIP is a second address of the external host, for "another destination" (the echo
	// server answers on both).
	AltServerIP    = netip.MustParseAddr("198.51.100.20")
	externalRouter = netip.MustParseAddr("198.51.100.1")
)

// Uplink is the name of every node's interface on the fabric.
const Uplink = "eth0"

// externalPort is the router's port toward the external host.
const externalPort = "ext"

// Spec says what to build.
type Spec struct {
	// Prefix starts every namespace name; RandomPrefix() when empty.
	Prefix string
	// Nodes is how many nodes to create (1..200), named node1..nodeN, with IPs 10.0.0.11 onward.
	Nodes int
	// PodsPerNode is how many pods each node starts with.
	PodsPerNode int
	// Profile is the CNI and service proxy every node runs; the zero value is PlainMasquerade without
	// a service proxy.
	Profile Profile
	// NodeAddr, when set, gives node i (1-based) its address in VPCSubnet instead of 10.0.0.(10+i), so
	// that a lab can place nodes in the subnets of different zones.
	NodeAddr func(i int) netip.Addr
}

// Topology is a built lab: a fabric namespace that plays the cloud network (a router with one port per
// host, see attach), an external host, and nodes with pods. Nodes run the rules of the Profile's CNI and
// service proxy: per-pod veths and /32 routes, pod addresses routed by the fabric (and between nodes
// where the CNI routes natively), and the CNI's marks and SNAT.
type Topology struct {
	Prefix   string
	Profile  Profile
	Fabric   *Namespace
	External *Namespace
	Nodes    []*Node

	owned    []*Namespace
	ports    map[netip.Addr]string // host IP → its port on the router
	nodeAddr func(int) netip.Addr
}

// Node is one node namespace.
type Node struct {
	Name    string
	NS      *Namespace
	IP      netip.Addr
	PodCIDR netip.Prefix
	Pods    []*Pod

	index int
}

// Pod is one pod namespace with its single address on eth0.
type Pod struct {
	NS   *Namespace
	IP   netip.Addr
	Node *Node
	// HostVeth is the node-side interface of the pod, named as the profile's CNI names it.
	HostVeth string

	index int
}

// Build creates the topology. On error it removes what it created.
func Build(ctx context.Context, spec Spec) (*Topology, error) {
	if spec.Nodes < 1 || spec.Nodes > 200 {
		return nil, fmt.Errorf("netlab: %d nodes: want 1..200", spec.Nodes)
	}
	if spec.Prefix == "" {
		spec.Prefix = RandomPrefix()
	}
	if spec.Profile.CNI == nil {
		spec.Profile.CNI = PlainMasquerade()
	}
	t := &Topology{Prefix: spec.Prefix, Profile: spec.Profile, ports: map[netip.Addr]string{}, nodeAddr: spec.NodeAddr}
	if err := t.build(ctx, spec); err != nil {
		return nil, errors.Join(err, t.Close())
	}
	return t, nil
}

func (t *Topology) build(ctx context.Context, spec Spec) error {
	if err := t.buildFabric(ctx); err != nil {
		return err
	}
	for i := 1; i <= spec.Nodes; i++ {
		if _, err := t.addNode(ctx, i); err != nil {
			return err
		}
	}
	for _, n := range t.Nodes {
		if err := t.routePodCIDRs(n); err != nil {
			return err
		}
		for range spec.PodsPerNode {
			if _, err := t.AddPod(ctx, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close deletes every namespace the topology created, and with them everything inside.
func (t *Topology) Close() error {
	var errs []error
	for i := len(t.owned) - 1; i >= 0; i-- {
		errs = append(errs, t.owned[i].Close())
	}
	t.owned = nil
	return errors.Join(errs...)
}

func (t *Topology) newNamespace(ctx context.Context, suffix string) (*Namespace, error) {
	ns, err := NewNamespace(ctx, t.Prefix+"-"+suffix)
	if err != nil {
		return nil, err
	}
	t.owned = append(t.owned, ns)
	// The lab is IPv4 only. IPv6 would add link-local addresses whose routes appear whenever duplicate
	// address detection ends, which makes kernel dumps differ by timing alone.
	return ns, ns.Sysctl("net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
}

// buildFabric creates the router namespace and the external host behind it.
func (t *Topology) buildFabric(ctx context.Context) error {
	var err error
	if t.Fabric, err = t.newNamespace(ctx, "fab"); err != nil {
		return err
	}
	if err := t.Fabric.Sysctl("net.ipv4.ip_forward=1"); err != nil {
		return err
	}
	if t.External, err = t.newNamespace(ctx, "ext"); err != nil {
		return err
	}
	if err := Veth(t.Fabric, externalPort, netip.PrefixFrom(externalRouter, 24), t.External, Uplink,
		netip.PrefixFrom(ServerIP, 24)); err != nil {
		return err
	}
	if err := t.External.LinkUp(Uplink, netip.PrefixFrom(AltServerIP, 24)); err != nil {
		return err
	}
	return t.External.Route(netip.MustParsePrefix("0.0.0.0/0"), externalRouter, "")
}

// addNode creates node i on the fabric with a default route through the router and the profile's rules.
func (t *Topology) addNode(ctx context.Context, i int) (*Node, error) {
	n := &Node{
		Name:    fmt.Sprintf("node%d", i),
		IP:      netip.AddrFrom4([4]byte{10, 0, 0, byte(10 + i)}),
		PodCIDR: podBlock(t.Profile.CNI, i),
		index:   i,
	}
	if t.nodeAddr != nil {
		if n.IP = t.nodeAddr(i); !VPCSubnet.Contains(n.IP) {
			return nil, fmt.Errorf("netlab: node%d address %s is outside the VPC subnet %s", i, n.IP, VPCSubnet)
		}
	}
	var err error
	if n.NS, err = t.newNamespace(ctx, fmt.Sprintf("n%d", i)); err != nil {
		return nil, err
	}
	t.Nodes = append(t.Nodes, n)
	if err := t.attach(ctx, fmt.Sprintf("n%d", i), n.NS, n.IP); err != nil {
		return nil, err
	}
	return n, t.installCNI(ctx, n)
}

// AttachHost puts a new namespace with address ip on the node subnet, default route through the router.
// Tests use it for hosts that are not nodes (a spoofer).
func (t *Topology) AttachHost(ctx context.Context, suffix string, ip netip.Addr) (*Namespace, error) {
	ns, err := t.newNamespace(ctx, suffix)
	if err != nil {
		return nil, err
	}
	return ns, t.attach(ctx, suffix, ns, ip)
}

// RouteToNode makes the fabric deliver ip to node, the way a cloud network delivers a secondary IP to
// the instance that holds it: the route follows, and so does the source check (node may now send with
// ip as its source, and no other host may). It replaces any earlier assignment of ip.
func (t *Topology) RouteToNode(ip netip.Addr, n *Node) error {
	return t.routeTo(ip, n.IP)
}

// RouteToHost makes the fabric deliver ip to the host interface that holds the address at (a node's or an
// ENI's primary address), as RouteToNode and RouteToENI do: for a cloud simulator that reports where an IP
// lives by its next hop.
func (t *Topology) RouteToHost(ip, at netip.Addr) error {
	if _, ok := t.ports[at]; !ok {
		return fmt.Errorf("netlab: no host interface holds %s", at)
	}
	return t.routeTo(ip, at)
}

// RouteBlockToNode makes the fabric deliver a whole range to n and lets n send from it, the way EC2
// delivers a prefix delegated to a node's ENI: for pods whose addresses an IPAM plugin takes from a
// block of the node's own.
func (t *Topology) RouteBlockToNode(p netip.Prefix, n *Node) error {
	if err := t.Fabric.Route(p, n.IP, ""); err != nil {
		return err
	}
	return t.allowSource(t.ports[n.IP], p)
}

// SetHostLinks cuts (up false) or restores every router port of node n, its own and its ENIs': cut, the
// fabric drops whatever the instance sends or is sent, as when an instance stops answering. The links
// stay up, so neither side loses its routes (a link set down would flush them, which a dead instance's
// VPC routes do not).
func (t *Topology) SetHostLinks(n *Node, up bool) error {
	op := "-I"
	if up {
		op = "-D"
	}
	for _, port := range t.portsOf(n) {
		for _, dir := range []string{"-i", "-o"} {
			if _, err := t.Fabric.Run(context.Background(), nil, "iptables", op, "FORWARD", dir, port,
				"-m", "comment", "--comment", InstanceDownComment, "-j", "DROP"); err != nil {
				return fmt.Errorf("netlab: %s port %s: %w", n.Name, port, err)
			}
		}
	}
	return nil
}

// InstanceDownComment marks the fabric rules of SetHostLinks.
const InstanceDownComment = "netlab instance not answering"

// portsOf lists n's router ports: its own (n<i>) and those of its ENIs (n<i><device>).
func (t *Topology) portsOf(n *Node) []string {
	own := fmt.Sprintf("n%d", n.index)
	var ports []string
	for _, port := range t.ports {
		if rest, ok := strings.CutPrefix(port, own); ok && (rest == "" || !unicode.IsDigit(rune(rest[0]))) {
			ports = append(ports, port)
		}
	}
	slices.Sort(ports)
	return ports
}

// routeTo delivers ip to the host interface that holds the address at, and lets only that one send from ip.
func (t *Topology) routeTo(ip, at netip.Addr) error {
	if err := t.Unroute(ip); err != nil {
		return err
	}
	if err := t.Fabric.Route(netip.PrefixFrom(ip, 32), at, ""); err != nil {
		return err
	}
	return t.allowSource(t.ports[at], netip.PrefixFrom(ip, 32))
}

// Unroute removes the fabric route for ip and every host's permission to send from it.
func (t *Topology) Unroute(ip netip.Addr) error {
	for _, port := range t.ports {
		if _, err := t.Fabric.Run(context.Background(), nil, "ipset", "-exist", "del", sourceSet(port), ip.String()); err != nil {
			return err
		}
	}
	return t.Fabric.DeleteRoute(netip.PrefixFrom(ip, 32))
}

// Node returns the node with the given name, or nil.
func (t *Topology) Node(name string) *Node {
	for _, n := range t.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}
