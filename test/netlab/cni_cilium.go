package netlab

import (
	"fmt"
	"net/netip"
)

// Cilium reproduces what cilium-agent programs with iptables on a node in its default, non-eBPF-masquerade
// setup beside kube-proxy, with native routing of PodSupernet and the L7 proxy enabled:
//   - pkg/datapath/iptables/iptables.go: the CILIUM_* chains fed from the built-in chains ("cilium-feeder:
//     ..."), the forward accepts for cilium_host, cilium_net and lxc+, the "mark as from host" rule on
//     OUTPUT (0xc00/0xf00), the proxy accepts, the socket match that marks traffic to the proxy
//     0x200/0xffffffff, and the masquerade "cilium masquerade non-cluster" (from the node's block to
//     outside the native-routing CIDR, not out of cilium_+), with the proxy-return exclusion
//     (0xa00/0xe00);
//   - pkg/datapath/linux/linux_defaults/mark.go: the magic marks in 0x0f00, Kubernetes' 0x4000/0x8000,
//     0x1000 for WireGuard (0x1e00), and the identity carried in 0xffff00ff when the magic is 0xf00;
//   - pkg/datapath/linux/routing (NodeEnsureLocalRoutingRule): the kernel's "lookup local" rule moved
//     from priority 0 to 100 (linux_defaults.RulePriorityLocalLookup), and the priority-9 rule sending
//     0x200/0xf00 to table 2004 (local delivery to the proxy).
//
// Simplified: no eBPF. Cilium's programs on lxc+ and cilium_host (policy, service translation, ARP
// replies for the pod's gateway, identity marks) are absent; the pod's gateway is 169.254.1.1 answered by
// proxy ARP, and packets take the kernel's routing and iptables path, as with Cilium's legacy host routing.
func Cilium() CNI { return ciliumCNI{} }

type ciliumCNI struct{}

func (ciliumCNI) Name() string                  { return "cilium" }
func (ciliumCNI) addressing() addressing        { return podBlocks }
func (ciliumCNI) gatewayARP() gatewayARP        { return proxyARP }
func (ciliumCNI) hostVeth(p *Pod) string        { return hashedVeth("lxc", p) }
func (ciliumCNI) pod(*Pod) Declared             { return Declared{} }
func (ciliumCNI) clusterRanges() []netip.Prefix { return []netip.Prefix{PodSupernet} }

// masquerades: only the node's own block ("-s <block>"), so a forwarded packet of another node's pod
// leaves with its address.
func (ciliumCNI) masquerades(n *Node, src, dst netip.Addr) bool {
	return n.PodCIDR.Contains(src) && !PodSupernet.Contains(dst)
}

func (ciliumCNI) snatRule() SNATRule {
	return SNATRule{Chain: "CILIUM_POST_nat", Comment: "cilium masquerade non-cluster"}
}

func (ciliumCNI) node(n *Node) Declared {
	d := ciliumRules(n, []string{
		`-A CILIUM_POST_nat -s ` + n.PodCIDR.String() + ` ! -d ` + PodSupernet.String() +
			` ! -o cilium_+ -m comment --comment "cilium masquerade non-cluster" -j MASQUERADE`,
	})
	d.Sysctls = []string{"net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0"}
	return d
}

// ciliumRules is everything but the pod masquerade, which differs between Cilium on its own and GKE
// Dataplane V2 (where the ip-masq-agent's chain does it).
func ciliumRules(n *Node, masquerade []string) Declared {
	hostIP := n.PodCIDR.Addr().Next() // cilium_host's router IP: the first address of the block
	nat := append([]string{
		`-A PREROUTING -m comment --comment "cilium-feeder: CILIUM_PRE_nat" -j CILIUM_PRE_nat`,
		`-A OUTPUT -m comment --comment "cilium-feeder: CILIUM_OUTPUT_nat" -j CILIUM_OUTPUT_nat`,
		`-A POSTROUTING -m comment --comment "cilium-feeder: CILIUM_POST_nat" -j CILIUM_POST_nat`,
		":CILIUM_PRE_nat", ":CILIUM_OUTPUT_nat",
	}, masquerade...)
	nat = append(nat,
		`-A CILIUM_POST_nat -m mark --mark 0xa00/0xe00 -m comment --comment "exclude proxy return traffic from masquerade" -j ACCEPT`,
		fmt.Sprintf(`-A CILIUM_POST_nat ! -s %s/32 ! -d %s -o cilium_host -m comment --comment "cilium host->cluster masquerade" -j SNAT --to-source %s`,
			hostIP, n.PodCIDR, hostIP),
	)
	return Declared{
		InsertFirst: true,
		Tables: map[string][]string{
			"filter": ciliumFilter,
			"mangle": ciliumMangle,
			"nat":    nat,
		},
		Rules: []IPRule{
			{Priority: 9, Args: []string{"fwmark", "0x200/0xf00", "lookup", "2004"}, Shown: "from all fwmark 0x200/0xf00 lookup 2004"},
			{Priority: 100, Args: []string{"lookup", "local"}, Shown: "from all lookup local"},
		},
		DeleteRules: []IPRule{{Priority: 0, Args: []string{"lookup", "local"}, Shown: "from all lookup local"}},
		Commands:    [][]string{{"ip", "route", "replace", "local", "0.0.0.0/0", "dev", "lo", "table", "2004"}},
	}
}

var ciliumFilter = []string{
	`-A INPUT -m comment --comment "cilium-feeder: CILIUM_INPUT" -j CILIUM_INPUT`,
	`-A FORWARD -m comment --comment "cilium-feeder: CILIUM_FORWARD" -j CILIUM_FORWARD`,
	`-A OUTPUT -m comment --comment "cilium-feeder: CILIUM_OUTPUT" -j CILIUM_OUTPUT`,
	`-A CILIUM_FORWARD -o cilium_host -m comment --comment "cilium: any->cluster on cilium_host forward accept" -j ACCEPT`,
	`-A CILIUM_FORWARD -i cilium_host -m comment --comment "cilium: cluster->any on cilium_host forward accept (nodeport)" -j ACCEPT`,
	`-A CILIUM_FORWARD -i lxc+ -m comment --comment "cilium: cluster->any on lxc+ forward accept" -j ACCEPT`,
	`-A CILIUM_FORWARD -i cilium_net -m comment --comment "cilium: cluster->any on cilium_net forward accept (nodeport)" -j ACCEPT`,
	`-A CILIUM_FORWARD -o lxc+ -m comment --comment "cilium: any->cluster on lxc+ forward accept" -j ACCEPT`,
	`-A CILIUM_FORWARD -i lxc+ -m comment --comment "cilium: cluster->any on lxc+ forward accept (nodeport)" -j ACCEPT`,
	`-A CILIUM_INPUT -m mark --mark 0x200/0xf00 -m comment --comment "cilium: ACCEPT for proxy traffic" -j ACCEPT`,
	`-A CILIUM_OUTPUT -m mark --mark 0xa00/0xfffffeff -m comment --comment "cilium: ACCEPT for proxy return traffic" -j ACCEPT`,
	`-A CILIUM_OUTPUT -m mark --mark 0x800/0xe00 -m comment --comment "cilium: ACCEPT for l7 proxy upstream traffic" -j ACCEPT`,
	`-A CILIUM_OUTPUT -m mark ! --mark 0xe00/0xf00 -m mark ! --mark 0xd00/0xf00 -m mark ! --mark 0xa00/0xe00 -m mark ! --mark 0x800/0xe00 -m mark ! --mark 0xf00/0xf00 -m comment --comment "cilium: host->any mark as from host" -j MARK --set-xmark 0xc00/0xf00`,
}

var ciliumMangle = []string{
	`-A PREROUTING -m comment --comment "cilium-feeder: CILIUM_PRE_mangle" -j CILIUM_PRE_mangle`,
	`-A POSTROUTING -m comment --comment "cilium-feeder: CILIUM_POST_mangle" -j CILIUM_POST_mangle`,
	":CILIUM_POST_mangle",
	`-A CILIUM_PRE_mangle ! -o lo -m socket --transparent -m mark ! --mark 0xe00/0xf00 -m mark ! --mark 0x800/0xe00 -m comment --comment "cilium: any->pod redirect proxied traffic to host proxy" -j MARK --set-xmark 0x200/0xffffffff`,
}

func (ciliumCNI) marks() []Mark { return ciliumMarks("Cilium") }

func ciliumMarks(owner string) []Mark {
	var out []Mark
	for _, r := range ciliumFilter {
		if containsMark(r) {
			out = append(out, Mark{0x0f00, 0x0f00, owner, r})
		}
	}
	return append(out,
		Mark{0x0200, 0xffffffff, owner, ciliumMangle[3]},
		Mark{0x0a00, 0x0e00, owner, `-A CILIUM_POST_nat -m mark --mark 0xa00/0xe00 -m comment --comment "exclude proxy return traffic from masquerade" -j ACCEPT`},
		Mark{0x0200, 0x0f00, owner, "9:\tfrom all fwmark 0x200/0xf00 lookup 2004"},
		Mark{0x1e00, 0x1f00, owner + " (eBPF, WireGuard)", "linux_defaults.MagicMarkWireGuardEncrypted 0x1e00"},
		Mark{0x0f00, 0xffff0fff, owner + " (eBPF, identity)", "linux_defaults.MagicMarkIdentity 0x0f00 with the identity in 0xffff00ff"},
		Mark{0x4000, 0x4000, owner, "linux_defaults.MagicMarkK8sMasq 0x4000 (Kubernetes')"},
		Mark{0x8000, 0x8000, owner, "linux_defaults.MagicMarkK8sDrop 0x8000 (Kubernetes')"},
	)
}
