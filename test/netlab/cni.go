package netlab

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net/netip"
)

// CNIMasqueradeComment marks the plain profile's MASQUERADE rule, so tests can check it survives.
const CNIMasqueradeComment = "netlab emulated cni masquerade"

// podGateway is the address every pod uses as its next hop; the node answers for it on each pod veth.
// The AWS VPC CNI, Azure CNI's transparent mode, Calico and the plain profile all use this address.
var podGateway = netip.MustParseAddr("169.254.1.1")

// PlainMasquerade is the lab's original CNI: forwarding on, proxy ARP on the pod veths (named pN), pod
// blocks routed natively between nodes, and one MASQUERADE rule for pod traffic leaving PodSupernet. No
// marks, no ip rules: kinder than any cloud, kept as the baseline.
func PlainMasquerade() CNI { return plainCNI{} }

type plainCNI struct{}

func (plainCNI) Name() string           { return "plain" }
func (plainCNI) addressing() addressing { return podBlocks }
func (plainCNI) gatewayARP() gatewayARP { return proxyARP }
func (plainCNI) hostVeth(p *Pod) string { return fmt.Sprintf("p%d", p.index) }
func (plainCNI) pod(*Pod) Declared      { return Declared{} }
func (plainCNI) marks() []Mark          { return nil }

func (plainCNI) clusterRanges() []netip.Prefix { return []netip.Prefix{PodSupernet} }

func (plainCNI) masquerades(_ *Node, src, dst netip.Addr) bool {
	return PodSupernet.Contains(src) && !PodSupernet.Contains(dst)
}

func (plainCNI) snatRule() SNATRule {
	return SNATRule{Chain: "POSTROUTING", Comment: CNIMasqueradeComment}
}

func (plainCNI) node(*Node) Declared {
	return Declared{
		Sysctls: []string{"net.ipv4.ip_forward=1"},
		Tables: map[string][]string{"nat": {
			"-A POSTROUTING -s " + PodSupernet.String() + " ! -d " + PodSupernet.String() +
				` -m comment --comment "` + CNIMasqueradeComment + `" -j MASQUERADE`,
		}},
	}
}

// installCNI programs the node's service proxy and CNI, in that order (a CNI that inserts its jumps at
// the top then runs first, as it does when it starts after kube-proxy).
func (t *Topology) installCNI(ctx context.Context, n *Node) error {
	if err := t.Profile.Proxy.node(n).install(ctx, n.NS); err != nil {
		return fmt.Errorf("%s: service proxy %s: %w", n.Name, t.Profile.Proxy, err)
	}
	if err := t.Profile.CNI.node(n).install(ctx, n.NS); err != nil {
		return fmt.Errorf("%s: cni %s: %w", n.Name, t.Profile.CNI.Name(), err)
	}
	return nil
}

// routePodCIDRs makes the cloud network deliver n's pod block to n. With native routing between nodes
// (the plain, Calico and Cilium profiles) every other node also routes it through n; with a cloud that
// routes pod ranges itself, nodes just use their default route. VPC-addressed pods are routed one by one
// as they are added.
func (t *Topology) routePodCIDRs(n *Node) error {
	if t.Profile.CNI.addressing() == vpcAddresses {
		return nil
	}
	if err := t.Fabric.Route(n.PodCIDR, n.IP, ""); err != nil {
		return err
	}
	if err := t.allowSource(t.ports[n.IP], n.PodCIDR); err != nil {
		return err
	}
	if !nativeRouting(t.Profile.CNI) {
		return nil
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

// nativeRouting reports whether nodes route each other's pod blocks themselves (no cloud route).
func nativeRouting(c CNI) bool {
	switch c.(type) {
	case plainCNI, calicoCNI, ciliumCNI:
		return true
	}
	return false
}

// podBlock is node i's pod range: 10.244.i.0/24, or 10.0.i.0/24 inside the VPC for VPC-addressed pods.
func podBlock(c CNI, i int) netip.Prefix {
	if c.addressing() == vpcAddresses {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i), 0}), 24)
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(i), 0}), 24)
}

// AddPod creates a pod on node n with the next free address of its pod block (.10 onward).
func (t *Topology) AddPod(ctx context.Context, n *Node) (*Pod, error) {
	k := len(n.Pods) + 1
	if k > 240 {
		return nil, fmt.Errorf("netlab: %s is full", n.Name)
	}
	base := n.PodCIDR.Addr().As4()
	return t.AddPodWithIP(ctx, n, netip.AddrFrom4([4]byte{base[0], base[1], base[2], byte(9 + k)}))
}

// AddPodWithIP creates a pod on node n with address ip, wired the way the profile's CNI wires a pod. For
// a VPC-addressed profile the fabric then delivers ip to n, as the cloud does for a secondary IP the
// plugin's IPAM assigned to n: the seam for an emulated IPAM that picks addresses through a cloud
// simulator.
func (t *Topology) AddPodWithIP(ctx context.Context, n *Node, ip netip.Addr) (*Pod, error) {
	p := &Pod{Node: n, IP: ip, index: len(n.Pods) + 1}
	var err error
	if p.NS, err = t.newNamespace(ctx, fmt.Sprintf("n%dp%d", n.index, p.index)); err != nil {
		return nil, err
	}
	n.Pods = append(n.Pods, p)
	p.HostVeth = t.Profile.CNI.hostVeth(p)
	if err := t.wirePod(ctx, p); err != nil {
		return nil, fmt.Errorf("%s: pod %s: %w", n.Name, ip, err)
	}
	if t.Profile.CNI.addressing() == vpcAddresses {
		return p, t.RouteToNode(ip, n)
	}
	return p, nil
}

// wirePod creates the veth, the host's /32 route, the pod's routes through 169.254.1.1 and the way the
// pod resolves that gateway, then the plugin's per-pod rules.
func (t *Topology) wirePod(ctx context.Context, p *Pod) error {
	host, n := p.HostVeth, p.Node
	if err := Veth(n.NS, host, netip.Prefix{}, p.NS, "eth0", netip.PrefixFrom(p.IP, 32)); err != nil {
		return err
	}
	arp := t.Profile.CNI.gatewayARP()
	if arp != staticNeighbour {
		// Answer the pod's ARP for its gateway at once: proxy ARP replies are otherwise delayed by up
		// to 0.8 s, which would make a pod's first packet slow.
		if err := n.NS.Sysctl("net.ipv4.conf."+host+".proxy_arp=1", "net.ipv4.neigh."+host+".proxy_delay=0"); err != nil {
			return err
		}
	}
	if err := n.NS.Route(netip.PrefixFrom(p.IP, 32), netip.Addr{}, host); err != nil {
		return err
	}
	if err := p.NS.Route(netip.PrefixFrom(podGateway, 32), netip.Addr{}, "eth0"); err != nil {
		return err
	}
	if err := p.NS.Route(netip.MustParsePrefix("0.0.0.0/0"), podGateway, "eth0"); err != nil {
		return err
	}
	if arp != proxyARP {
		if err := p.staticGatewayNeighbour(ctx); err != nil {
			return err
		}
	}
	return t.Profile.CNI.pod(p).install(ctx, n.NS)
}

// staticGatewayNeighbour writes a permanent ARP entry for 169.254.1.1 with the host veth's MAC into the
// pod, as the AWS VPC CNI and Azure CNI do instead of relying on the host to answer.
func (p *Pod) staticGatewayNeighbour(ctx context.Context) error {
	link, err := p.Node.NS.NL.LinkByName(p.HostVeth)
	if err != nil {
		return fmt.Errorf("%s: link %s: %w", p.Node.NS.Name, p.HostVeth, err)
	}
	_, err = p.NS.Run(ctx, nil, "ip", "neigh", "replace", podGateway.String(), "lladdr",
		link.Attrs().HardwareAddr.String(), "dev", "eth0", "nud", "permanent")
	return err
}

// hashedVeth names a host veth the way the AWS VPC CNI and Calico do: a prefix and the first 11 hex
// digits of the SHA-1 of "namespace.pod" (aws/amazon-vpc-cni-k8s pkg/networkutils/names.go).
func hashedVeth(prefix string, p *Pod) string {
	sum := sha1.Sum([]byte(fmt.Sprintf("default.%s-pod%d", p.Node.Name, p.index)))
	return prefix + hex.EncodeToString(sum[:])[:11]
}
