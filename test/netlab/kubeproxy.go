package netlab

import "strings"

// ServiceProxy is the Kubernetes service proxy a node runs beside its CNI.
type ServiceProxy int

const (
	// NoServiceProxy: none (the plain profile, or a CNI that replaces kube-proxy).
	NoServiceProxy ServiceProxy = iota
	// KubeProxyIPTables is kube-proxy in iptables mode (kubernetes/kubernetes
	// pkg/proxy/iptables/proxier.go): KUBE-MARK-MASQ ORs 0x4000 into the mark (--masquerade-bit 14),
	// KUBE-POSTROUTING returns for packets without it, clears it with --xor-mark and masquerades the
	// rest; KUBE-FORWARD accepts marked packets and drops INVALID ones. KUBE-MARK-DROP (0x8000) is no
	// longer created by kube-proxy or the kubelet (removed with the iptables ownership clean-up), so it is
	// not programmed; Cilium still documents the bit as Kubernetes'. No Service chains: the lab has no
	// Services; the skeleton with its marks is what a datapath meets on every node.
	KubeProxyIPTables
	// KubeProxyNFTables is kube-proxy in nftables mode (kubernetes/kubernetes
	// pkg/proxy/nftables/proxier.go, setupNFTables): its own table `ip kube-proxy`, base chains at
	// dstnat-10 / dstnat / srcnat, mark-for-masquerade (mark | 0x4000) and masquerading (return when
	// the bit is clear, xor it away, masquerade fully-random), and the cluster-IP checks that reject or
	// drop new connections to the service range.
	KubeProxyNFTables
)

func (s ServiceProxy) String() string {
	switch s {
	case KubeProxyIPTables:
		return "kube-proxy-iptables"
	case KubeProxyNFTables:
		return "kube-proxy-nftables"
	}
	return "none"
}

// kubeProxyMasqMark is 1 << --masquerade-bit (default 14).
const kubeProxyMasqMark = "0x4000"

func (s ServiceProxy) node(*Node) Declared {
	switch s {
	case KubeProxyIPTables:
		return kubeProxyIPTablesRules()
	case KubeProxyNFTables:
		return Declared{NFT: kubeProxyNFTScript(), NFTTable: "kube-proxy", NFTExpect: kubeProxyNFTExpect}
	}
	return Declared{}
}

func kubeProxyIPTablesRules() Declared {
	return Declared{
		// --iptables-localhost-nodeports (default true) makes kube-proxy set route_localnet.
		Sysctls: []string{"net.ipv4.conf.all.route_localnet=1"},
		Tables: map[string][]string{
			"nat": {
				`-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`,
				`-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`,
				`-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING`,
				`-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000`,
				`-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN`,
				`-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0`,
				`-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully`,
				`-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS`,
				":KUBE-NODEPORTS",
			},
			"filter": {
				`-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL`,
				`-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS`,
				`-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES`,
				`-A INPUT -j KUBE-FIREWALL`,
				`-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL`,
				`-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD`,
				`-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`,
				`-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES`,
				`-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL`,
				`-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`,
				`-A OUTPUT -j KUBE-FIREWALL`,
				":KUBE-EXTERNAL-SERVICES", ":KUBE-NODEPORTS", ":KUBE-PROXY-FIREWALL", ":KUBE-SERVICES",
				`-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`,
				`-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP`,
				`-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT`,
				`-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
			},
		},
	}
}

// kubeProxyNFTScript is the table setupNFTables creates before any Service exists; serviceCIDR is the
// lab's, for the "drop traffic to unallocated ClusterIPs" rule. Priorities are written as numbers
// (dstnat = -100, srcnat = 100): Debian's nft 1.0.6 rejects "dstnat - 10" on the filter hooks.
func kubeProxyNFTScript() string {
	return strings.NewReplacer("@SVC@", ServiceCIDR.String(), "@MASQ@", kubeProxyMasqMark).Replace(`
table ip kube-proxy {
	comment "rules for kube-proxy"
	set cluster-ips { type ipv4_addr; comment "Active ClusterIPs"; }
	map service-ips { type ipv4_addr . inet_proto . inet_service : verdict; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic"; }
	map service-nodeports { type inet_proto . inet_service : verdict; comment "NodePort traffic"; }
	map no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict; comment "vmap to drop or reject packets to services with no endpoints"; }
	map no-endpoint-nodeports { type inet_proto . inet_service : verdict; comment "vmap to drop or reject packets to service nodeports with no endpoints"; }
	map firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict; comment "destinations that are subject to LoadBalancerSourceRanges"; }
	chain reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports"; reject; }
	chain service-endpoints-check { ip daddr . meta l4proto . th dport vmap @no-endpoint-services; }
	chain nodeport-endpoints-check { ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports; }
	chain firewall-check { ip daddr . meta l4proto . th dport vmap @firewall-ips; }
	chain services { ip daddr . meta l4proto . th dport vmap @service-ips; fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports; }
	chain cluster-ips-check {
		ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
		ip daddr { @SVC@ } drop comment "Drop traffic to unallocated ClusterIPs"
	}
	chain mark-for-masquerade { mark set mark or @MASQ@; }
	chain masquerading {
		mark and @MASQ@ == 0 return
		mark set mark xor @MASQ@
		masquerade fully-random
	}
	chain filter-prerouting { type filter hook prerouting priority -110; ct state new jump firewall-check; }
	chain filter-input { type filter hook input priority -110; ct state new jump nodeport-endpoints-check; ct state new jump service-endpoints-check; }
	chain filter-forward { type filter hook forward priority -110; ct state new jump service-endpoints-check; ct state new jump cluster-ips-check; }
	chain filter-output { type filter hook output priority -110; ct state new jump service-endpoints-check; ct state new jump firewall-check; }
	chain filter-output-post-dnat { type filter hook output priority -90; ct state new jump cluster-ips-check; }
	chain nat-prerouting { type nat hook prerouting priority -100; jump services; }
	chain nat-output { type nat hook output priority -100; jump services; }
	chain nat-postrouting { type nat hook postrouting priority 100; jump masquerading; }
}
`)
}

// kubeProxyNFTExpect are lines `nft list table ip kube-proxy` prints for the mark handling.
var kubeProxyNFTExpect = []string{
	"meta mark set meta mark | 0x00004000",
	"meta mark & 0x00004000 == 0x00000000 return",
	"meta mark set meta mark ^ 0x00004000",
	"masquerade fully-random",
	"type nat hook postrouting priority srcnat; policy accept;",
}

func (s ServiceProxy) marks() []Mark {
	switch s {
	case KubeProxyIPTables:
		return []Mark{
			{0x4000, 0x4000, "kube-proxy (iptables)", `-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000`},
			{0x4000, 0x4000, "kube-proxy (iptables)", `-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN`},
			{0x4000, 0x4000, "kube-proxy (iptables)", `-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT`},
		}
	case KubeProxyNFTables:
		return []Mark{
			{0x4000, 0x4000, "kube-proxy (nftables)", "table ip kube-proxy chain mark-for-masquerade: meta mark set meta mark | 0x00004000"},
			{0x4000, 0x4000, "kube-proxy (nftables)", "table ip kube-proxy chain masquerading: meta mark & 0x00004000 == 0x00000000 return"},
		}
	}
	return nil
}
