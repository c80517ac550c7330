package netlab

import (
	"context"
	"net/netip"
)

// SourceCheckComment marks the fabric's emulation of a cloud's source/destination check.
const SourceCheckComment = "netlab cloud source/destination check"

// attach connects ns to the router the way a VPC connects an instance: a point-to-point veth whose
// router side (port) answers ARP for the whole subnet (proxy ARP) and holds RouterIP, and a /32 route
// to the host. All host-to-host traffic therefore crosses the router, which drops any packet a host
// sends from an address the cloud has not given it (its own IP, its pod CIDR, the egress IPs routed
// to it): a reply that tried to bypass the tunnel with an internet source address dies there, as it
// would on AWS.
func (t *Topology) attach(ctx context.Context, port string, ns *Namespace, ip netip.Addr) error {
	if err := t.attachPort(ctx, port, ns, Uplink, ip, netip.PrefixFrom(ip, VPCSubnet.Bits())); err != nil {
		return err
	}
	return ns.Route(netip.MustParsePrefix("0.0.0.0/0"), RouterIP, "")
}

// attachPort is attach without the host's default route: the router's new port delivers ip to device dev
// of ns, which gets hostAddr (none when zero), and accepts only ip as a source until more is allowed.
func (t *Topology) attachPort(ctx context.Context, port string, ns *Namespace, dev string, ip netip.Addr, hostAddr netip.Prefix) error {
	if err := Veth(t.Fabric, port, netip.PrefixFrom(RouterIP, 32), ns, dev, hostAddr); err != nil {
		return err
	}
	if err := t.Fabric.Sysctl("net.ipv4.conf."+port+".proxy_arp=1", "net.ipv4.neigh."+port+".proxy_delay=0"); err != nil {
		return err
	}
	if err := t.Fabric.Route(netip.PrefixFrom(ip, 32), netip.Addr{}, port); err != nil {
		return err
	}
	if err := t.sourceCheck(ctx, port); err != nil {
		return err
	}
	t.ports[ip] = port
	return t.allowSource(port, netip.PrefixFrom(ip, 32))
}

func sourceSet(port string) string { return "netlab-src-" + port }

// sourceCheck creates the port's set of allowed source ranges and the rule that enforces it.
func (t *Topology) sourceCheck(ctx context.Context, port string) error {
	return t.Fabric.RunLines(ctx,
		[]string{"ipset", "create", sourceSet(port), "hash:net"},
		sourceCheckRule("-A", port),
	)
}

// sourceCheckRule is the iptables command that appends (-A) or deletes (-D) the port's source check.
func sourceCheckRule(op, port string) []string {
	return []string{"iptables", op, "FORWARD", "-i", port, "-m", "set", "!", "--match-set", sourceSet(port), "src",
		"-m", "comment", "--comment", SourceCheckComment, "-j", "DROP"}
}

// allowSource lets the host behind port send from p.
func (t *Topology) allowSource(port string, p netip.Prefix) error {
	_, err := t.Fabric.Run(context.Background(), nil, "ipset", "-exist", "add", sourceSet(port), p.String())
	return err
}
