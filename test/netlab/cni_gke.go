package netlab

import "net/netip"

// GKE reproduces a VPC-native GKE node with the legacy datapath: pod addresses come from the node's alias
// IP range on nic0 (a /24 of the cluster's pod secondary range, 10.244.N.0/24 here) that the VPC routes
// to the node, host veths gke<hash>, and SNAT by the IP-MASQ chain that the node's configure script
// installs and the ip-masq-agent keeps (kubernetes/kubernetes cluster/gce/gci/configure-helper.sh,
// kubernetes-sigs/ip-masq-agent cmd/ip-masq-agent/ip-masq-agent.go): RETURN for link-local, RFC 1918 and
// the other reserved ranges, MASQUERADE for the rest. Those reserved ranges include 198.51.100.0/24
// (RFC 5737), the lab's "internet": an ordinary pod reaches the echo server with its own address, exactly
// as it would on GKE. No marks.
func GKE() CNI { return gkeCNI{} }

// GKEDataplaneV2 is GKE with Dataplane V2 (Cilium-based): the same alias-range addressing and IP-MASQ
// chain, and Cilium's iptables chains, ip rules and marks (see Cilium), without kube-proxy. Simplified: no
// eBPF (service translation, policy and Cilium's own masquerading of pod traffic are not reproduced).
func GKEDataplaneV2() CNI { return gkeCNI{dataplaneV2: true} }

type gkeCNI struct{ dataplaneV2 bool }

func (c gkeCNI) Name() string {
	if c.dataplaneV2 {
		return "gke-dataplane-v2"
	}
	return "gke"
}

func (gkeCNI) addressing() addressing { return podBlocks }
func (gkeCNI) gatewayARP() gatewayARP { return proxyARP }
func (gkeCNI) pod(*Pod) Declared      { return Declared{} }

func (c gkeCNI) hostVeth(p *Pod) string {
	if c.dataplaneV2 {
		return hashedVeth("lxc", p)
	}
	return hashedVeth("gke", p)
}

// clusterRanges: the pod secondary range and the node subnet.
func (gkeCNI) clusterRanges() []netip.Prefix { return []netip.Prefix{PodSupernet, VPCSubnet} }

func (gkeCNI) masquerades(_ *Node, _, dst netip.Addr) bool { return gkeMasq.masquerades(dst) }
func (gkeCNI) snatRule() SNATRule                          { return gkeMasq.snatRule() }

func (c gkeCNI) marks() []Mark {
	if c.dataplaneV2 {
		return ciliumMarks("GKE Dataplane V2 (Cilium)")
	}
	return nil
}

func (c gkeCNI) node(n *Node) Declared {
	d := gkeMasq.rules()
	if c.dataplaneV2 {
		cil := ciliumRules(n, nil)
		cil.Tables["nat"] = append(cil.Tables["nat"], d.Tables["nat"]...)
		d = cil
	}
	d.Sysctls = []string{"net.ipv4.ip_forward=1"}
	return d
}

// gkeReservedRanges are the configure script's non-masquerade ranges, with the RFC each comment names.
var gkeReservedRanges = []struct {
	prefix netip.Prefix
	rfc    string
}{
	{netip.MustParsePrefix("10.0.0.0/8"), "RFC 1918"},
	{netip.MustParsePrefix("172.16.0.0/12"), "RFC 1918"},
	{netip.MustParsePrefix("192.168.0.0/16"), "RFC 1918"},
	{netip.MustParsePrefix("240.0.0.0/4"), "RFC 5735"},
	{netip.MustParsePrefix("192.0.2.0/24"), "RFC 5737"},
	{netip.MustParsePrefix("198.51.100.0/24"), "RFC 5737"},
	{netip.MustParsePrefix("203.0.113.0/24"), "RFC 5737"},
	{netip.MustParsePrefix("100.64.0.0/10"), "RFC 6598"},
	{netip.MustParsePrefix("198.18.0.0/15"), "RFC 6815"},
	{netip.MustParsePrefix("192.0.0.0/24"), "RFC 6890"},
	{netip.MustParsePrefix("192.88.99.0/24"), "RFC 7526"},
}

var gkeMasq = func() ipMasqAgent {
	a := ipMasqAgent{chain: "IP-MASQ", commentPrefix: "ip-masq"}
	rfc := map[netip.Prefix]string{}
	for _, r := range gkeReservedRanges {
		a.nonMasq = append(a.nonMasq, r.prefix)
		rfc[r.prefix] = r.rfc
	}
	a.nonMasqComment = func(p netip.Prefix) string {
		return "ip-masq: " + rfc[p] + " reserved range is not subject to MASQUERADE"
	}
	return a
}()
