package netlab

import (
	"crypto/sha256"
	"encoding/base64"
	"net/netip"
	"strings"
)

// Calico reproduces Calico's felix in iptables mode with its defaults (projectcalico/calico felix):
//   - config_params.go: IptablesMarkMask 0xffff0000; dataplane/driver.go allocates from it, lowest bit
//     first, accept 0x10000, pass 0x20000, drop 0x40000, scratch-0 0x80000, scratch-1 0x100000, and
//     leaves the rest (0xffe00000) to the endpoint mark;
//   - rules/static.go: raw cali-PREROUTING clears the five bits, marks packets from cali+ with scratch-0
//     and checks their source with rpfilter; mangle cali-PREROUTING ACCEPTs RELATED,ESTABLISHED packets
//     and packets carrying the accept bit before anything after it (IptablesMangleAllowAction);
//     nat cali-POSTROUTING → cali-fip-snat, cali-nat-outgoing; jumps inserted at the top of the built-in
//     chains (ChainInsertMode insert);
//   - rules/nat.go: cali-nat-outgoing MASQUERADEs (--random-fully) from the IP pools with natOutgoing
//     (ipset cali40masq-ipam-pools) to anything outside every pool (cali40network-ip-pools);
//   - dataplane/linux/endpoint_mgr.go: host veths cali<hash> (the AWS VPC CNI names its veths the same
//     way for Calico's sake), proxy_arp, proxy_delay 0, route_localnet and forwarding on each.
//
// The pool is PodSupernet, one /24 block per node routed natively between nodes (BGP without
// encapsulation). Simplified: no policy, so the filter chains collapse to "accept what comes from or goes
// to a workload" by the accept bit; rule comments are "cali:" and a hash of the rule, like felix's but
// not its exact values.
func Calico() CNI { return calicoCNI{} }

type calicoCNI struct{}

func (calicoCNI) Name() string                  { return "calico" }
func (calicoCNI) addressing() addressing        { return podBlocks }
func (calicoCNI) gatewayARP() gatewayARP        { return proxyARP }
func (calicoCNI) hostVeth(p *Pod) string        { return hashedVeth("cali", p) }
func (calicoCNI) clusterRanges() []netip.Prefix { return []netip.Prefix{PodSupernet} }
func (calicoCNI) masquerades(_ *Node, src, dst netip.Addr) bool {
	return PodSupernet.Contains(src) && !PodSupernet.Contains(dst)
}

func (calicoCNI) snatRule() SNATRule {
	return SNATRule{Chain: "cali-nat-outgoing", Comment: calicoComment(calicoNATOutgoing)}
}

const calicoNATOutgoing = `-A cali-nat-outgoing -m set --match-set cali40masq-ipam-pools src -m set ! --match-set cali40network-ip-pools dst -j MASQUERADE --random-fully`

// The felix mark bits of the default mask.
const (
	calicoMarkAccept   = 0x10000
	calicoMarkScratch0 = 0x80000
	calicoAllMarkBits  = 0x1f0000
)

var calicoRules = map[string][]string{
	"raw": {
		`-A PREROUTING -j cali-PREROUTING`,
		`-A OUTPUT -j cali-OUTPUT`,
		`-A cali-PREROUTING -j MARK --set-xmark 0x0/0x1f0000`,
		`-A cali-PREROUTING -i cali+ -j MARK --set-xmark 0x80000/0x80000`,
		`-A cali-PREROUTING -m mark --mark 0x80000/0x80000 -j cali-rpf-skip`,
		`-A cali-PREROUTING -m mark --mark 0x80000/0x80000 -m rpfilter --validmark --invert -j DROP`,
		`-A cali-PREROUTING -m mark --mark 0x0/0x80000 -j cali-from-host-endpoint`,
		`-A cali-PREROUTING -m mark --mark 0x10000/0x10000 -j ACCEPT`,
		`-A cali-OUTPUT -j MARK --set-xmark 0x0/0x1f0000`,
		`-A cali-OUTPUT -j cali-to-host-endpoint`,
		`-A cali-OUTPUT -m mark --mark 0x10000/0x10000 -j ACCEPT`,
		":cali-rpf-skip", ":cali-from-host-endpoint", ":cali-to-host-endpoint",
	},
	"mangle": {
		`-A PREROUTING -j cali-PREROUTING`,
		`-A cali-PREROUTING -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
		`-A cali-PREROUTING -m mark --mark 0x10000/0x10000 -j ACCEPT`,
		`-A cali-PREROUTING -j cali-from-host-endpoint`,
		`-A cali-PREROUTING -m mark --mark 0x10000/0x10000 -j ACCEPT`,
		":cali-from-host-endpoint",
	},
	"filter": {
		`-A FORWARD -j cali-FORWARD`,
		`-A cali-FORWARD -j MARK --set-xmark 0x0/0xe0000`,
		`-A cali-FORWARD -i cali+ -j MARK --set-xmark 0x10000/0x10000`,
		`-A cali-FORWARD -o cali+ -j MARK --set-xmark 0x10000/0x10000`,
		`-A cali-FORWARD -m mark --mark 0x10000/0x10000 -j ACCEPT`,
	},
	"nat": {
		`-A POSTROUTING -j cali-POSTROUTING`,
		`-A cali-POSTROUTING -j cali-fip-snat`,
		`-A cali-POSTROUTING -j cali-nat-outgoing`,
		":cali-fip-snat",
		calicoNATOutgoing,
	},
}

// calicoComment is the "cali:" comment felix puts on each rule: a short hash of the rule.
func calicoComment(rule string) string {
	sum := sha256.Sum256([]byte(rule))
	return "cali:" + base64.RawURLEncoding.EncodeToString(sum[:])[:16]
}

// withComment adds felix's comment after the matches, where iptables-save prints it.
func withCalicoComment(rule string) string {
	if strings.HasPrefix(rule, ":") {
		return rule
	}
	i := strings.Index(rule, " -j ")
	return rule[:i] + ` -m comment --comment "` + calicoComment(rule) + `"` + rule[i:]
}

func (calicoCNI) node(*Node) Declared {
	d := Declared{
		InsertFirst: true,
		Tables:      map[string][]string{},
		Sysctls:     []string{"net.ipv4.ip_forward=1"},
		Setup: [][]string{
			{"ipset", "create", "cali40masq-ipam-pools", "hash:net"},
			{"ipset", "add", "cali40masq-ipam-pools", PodSupernet.String()},
			{"ipset", "create", "cali40network-ip-pools", "hash:net"},
			{"ipset", "add", "cali40network-ip-pools", PodSupernet.String()},
		},
	}
	for table, rules := range calicoRules {
		for _, r := range rules {
			d.Tables[table] = append(d.Tables[table], withCalicoComment(r))
		}
	}
	return d
}

// pod is felix's per-interface sysctls (proxy_arp and proxy_delay are set for every profile that
// answers ARP for the pod's gateway).
func (calicoCNI) pod(p *Pod) Declared {
	h := p.HostVeth
	return Declared{Sysctls: []string{"net.ipv4.conf." + h + ".route_localnet=1", "net.ipv4.conf." + h + ".forwarding=1"}}
}

func (c calicoCNI) marks() []Mark {
	var out []Mark
	for _, table := range sortedKeys(calicoRules) {
		for _, r := range c.node(nil).Tables[table] {
			if containsMark(r) {
				out = append(out, Mark{calicoAllMarkBits, calicoAllMarkBits, "Calico felix", r})
			}
		}
	}
	return append(out, Mark{0xffe00000, 0xffe00000, "Calico felix", "endpoint mark: the rest of IptablesMarkMask 0xffff0000"})
}
