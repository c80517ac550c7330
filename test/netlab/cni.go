package netlab

import (
	"context"
	"fmt"
	"net/netip"
)

// CNIMasqueradeComment marks the emulated CNI's MASQUERADE rule, so tests can check it survives.
const CNIMasqueradeComment = "netlab emulated cni masquerade"

// podGateway is the address every pod uses as its next hop; the node holds it on each pod veth.
var podGateway = netip.MustParseAddr("169.254.1.1")

// installCNI does what a simple CNI does on a node: forwarding on, and masquerade for pod traffic that
// leaves the pod supernet.
func (n *Node) installCNI(ctx context.Context) error {
	if err := n.NS.Sysctl("net.ipv4.ip_forward=1"); err != nil {
		return err
	}
	_, err := n.NS.Run(ctx, nil, "iptables", "-t", "nat", "-A", "POSTROUTING", "-s", PodSupernet.String(),
		"!", "-d", PodSupernet.String(), "-m", "comment", "--comment", CNIMasqueradeComment, "-j", "MASQUERADE")
	return err
}

// routePodCIDRs routes every other node's pod CIDR through that node (native routing), and lets the
// fabric route and accept the node's own pod CIDR.
func (t *Topology) routePodCIDRs(n *Node) error {
	if err := t.Fabric.Route(n.PodCIDR, n.IP, ""); err != nil {
		return err
	}
	if err := t.allowSource(t.ports[n.IP], n.PodCIDR); err != nil {
		return err
	}
	for _, peer := range t.Nodes {
		if peer == n {
			continue
		}
		if err := n.NS.Route(peer.PodCIDR, peer.IP, ""); err != nil {
			return err
		}
	}
	return nil
}

// AddPod creates a pod on node n with the next free address of its pod CIDR (10.244.N.10 onward).
func (t *Topology) AddPod(ctx context.Context, n *Node) (*Pod, error) {
	k := len(n.Pods) + 1
	if k > 240 {
		return nil, fmt.Errorf("netlab: %s is full", n.Name)
	}
	base := n.PodCIDR.Addr().As4()
	p := &Pod{Node: n, IP: netip.AddrFrom4([4]byte{base[0], base[1], base[2], byte(9 + k)})}
	var err error
	if p.NS, err = t.newNamespace(ctx, fmt.Sprintf("n%dp%d", n.index, k)); err != nil {
		return nil, err
	}
	n.Pods = append(n.Pods, p)
	hostSide := fmt.Sprintf("p%d", k)
	if err := Veth(n.NS, hostSide, netip.Prefix{}, p.NS, "eth0", netip.PrefixFrom(p.IP, 32)); err != nil {
		return nil, err
	}
	// Answer the pod's ARP for its gateway at once: proxy ARP replies are otherwise delayed by up to
	// 0.8 s, which would make a pod's first packet slow.
	if err := n.NS.Sysctl("net.ipv4.conf."+hostSide+".proxy_arp=1", "net.ipv4.neigh."+hostSide+".proxy_delay=0"); err != nil {
		return nil, err
	}
	if err := n.NS.Route(netip.PrefixFrom(p.IP, 32), netip.Addr{}, hostSide); err != nil {
		return nil, err
	}
	if err := p.NS.Route(netip.PrefixFrom(podGateway, 32), netip.Addr{}, "eth0"); err != nil {
		return nil, err
	}
	return p, p.NS.Route(netip.MustParsePrefix("0.0.0.0/0"), podGateway, "eth0")
}
