package netlab

import (
	"fmt"
	"net/netip"
)

// AWSOptions are the AWS VPC CNI settings a profile may change.
type AWSOptions struct {
	// Connmark is AWS_VPC_K8S_CNI_CONNMARK: the connmark bit that marks connections to leave through the
	// primary ENI (and so be SNATed); 0 means the CNI's default, 0x80.
	Connmark uint32
	// ExternalSNAT is AWS_VPC_K8S_CNI_EXTERNALSNAT=true (pods in private subnets behind a NAT gateway):
	// no SNAT chain and no connmark chain on the node, pods leave with their own addresses; the
	// node-port rules (the primary-ENI connmark, its restore, the priority-1024 rule) stay.
	ExternalSNAT bool
}

// AWSDefaultConnmark is the VPC CNI's defaultConnmark (pkg/networkutils/network.go).
const AWSDefaultConnmark = 0x80

// AWSVPCCNI reproduces the AWS VPC CNI (aws/amazon-vpc-cni-k8s) on a node with its defaults: external
// SNAT off, node-port support on, veth prefix "eni", SNAT with --random-fully ("prng").
//   - pkg/networkutils/network.go (SetupHostNetwork, buildIptablesSNATRules): the priority-1024 rule
//     "fwmark 0x80/0x80 lookup main"; nat POSTROUTING → AWS-SNAT-CHAIN-0, which RETURNs for the VPC's
//     CIDRs and SNATs the rest to the node's primary IP; in mangle PREROUTING the primary-ENI rule (set
//     connmark 0x80 on connections arriving on eth0 for a local address) and the restore of connmark
//     bit 0x80 into the fwmark for packets from the pod veths (eni+) and vlan+.
//   - pkg/networkutils/iptables_connmark.go (Setup): nat PREROUTING sends packets from eni+ to
//     AWS-CONNMARK-CHAIN-0, which RETURNs for the VPC's CIDRs and sets connmark 0x80 for the rest,
//     then restores bit 0x80 into the fwmark.
//   - cmd/aws-vpc-cni-init/main.go: rp_filter=2 (loose) on the primary ENI.
//   - cmd/routed-eni-cni-plugin/driver/driver.go: host veth eni<hash> (pkg/networkutils/names.go), the
//     pod's /32 route on it, the rule "to <pod> lookup main" at priority 512, a static ARP entry for
//     the pod's gateway 169.254.1.1. Pods on secondary ENIs (priority-1536 "from <pod>" rules into
//     per-ENI tables) are not modelled: every pod here sits on the primary ENI, as with the default
//     warm pool on a small node.
//
// Pod addresses are VPC addresses, as ipamd hands out secondary IPs of the node's ENIs: the lab gives
// node N's pods 10.0.N.10 onward inside VPCCIDR and the fabric routes each one to its node (as EC2 does
// for a secondary IP). ipamd itself (adopting secondary IPs through EC2) is not part of the profile: an
// IPAM that draws addresses through the EC2 simulator plugs in with Topology.AddPodWithIP, and the lab
// (test/lab) runs test/vpccni's ipamd and plugin beside every AWS node.
func AWSVPCCNI(o AWSOptions) CNI {
	if o.Connmark == 0 {
		o.Connmark = AWSDefaultConnmark
	}
	return awsCNI{mark: o.Connmark, externalSNAT: o.ExternalSNAT}
}

type awsCNI struct {
	mark         uint32
	externalSNAT bool
}

func (c awsCNI) Name() string {
	name := "aws-vpc-cni"
	if c.mark != AWSDefaultConnmark {
		name += fmt.Sprintf("-connmark-%#x", c.mark)
	}
	if c.externalSNAT {
		name += "-external-snat"
	}
	return name
}

func (awsCNI) addressing() addressing        { return vpcAddresses }
func (awsCNI) gatewayARP() gatewayARP        { return staticNeighbour }
func (awsCNI) hostVeth(p *Pod) string        { return hashedVeth("eni", p) }
func (awsCNI) clusterRanges() []netip.Prefix { return []netip.Prefix{VPCCIDR} }

// masquerades: the SNAT rule has no source match, only the VPC RETURN and "not to a local address".
func (c awsCNI) masquerades(_ *Node, _, dst netip.Addr) bool {
	return !c.externalSNAT && !VPCCIDR.Contains(dst)
}

func (c awsCNI) snatRule() SNATRule {
	if c.externalSNAT {
		return SNATRule{}
	}
	return SNATRule{Chain: "AWS-SNAT-CHAIN-0", Comment: "AWS, SNAT"}
}
func (c awsCNI) hexMark() string { return fmt.Sprintf("%#x/%#x", c.mark, c.mark) }
func (c awsCNI) restoreMark() string {
	return fmt.Sprintf("--restore-mark --nfmask %#x --ctmask %#x", c.mark, c.mark)
}
func (c awsCNI) hostRule() IPRule {
	return IPRule{Priority: 1024, Args: []string{"fwmark", c.hexMark(), "lookup", "main"},
		Shown: "from all fwmark " + c.hexMark() + " lookup main"}
}

func (c awsCNI) node(n *Node) Declared {
	d := Declared{
		Sysctls: []string{"net.ipv4.ip_forward=1", "net.ipv4.conf." + Uplink + ".rp_filter=2"},
		Rules:   []IPRule{c.hostRule()},
		Tables: map[string][]string{
			"mangle": {
				`-A PREROUTING -i ` + Uplink + ` -m comment --comment "AWS, primary ENI" -m addrtype --dst-type LOCAL --limit-iface-in -j CONNMARK --set-xmark ` + c.hexMark(),
				`-A PREROUTING -i eni+ -m comment --comment "AWS, primary ENI" -j CONNMARK ` + c.restoreMark(),
				`-A PREROUTING -i vlan+ -m comment --comment "AWS, primary ENI" -j CONNMARK ` + c.restoreMark(),
			},
		},
	}
	if !c.externalSNAT {
		d.Tables["nat"] = c.snatRules(n)
	}
	return d
}

// snatRules are the connmark chain (iptables_connmark.go) and the SNAT chain (network.go) that exist
// only with external SNAT off.
func (c awsCNI) snatRules(n *Node) []string {
	vpc := VPCCIDR.String()
	return []string{
		`-A PREROUTING -i eni+ -m comment --comment "AWS, outbound connections" -j AWS-CONNMARK-CHAIN-0`,
		`-A PREROUTING -m comment --comment "AWS, CONNMARK" -j CONNMARK ` + c.restoreMark(),
		`-A POSTROUTING -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0`,
		`-A AWS-CONNMARK-CHAIN-0 -d ` + vpc + ` -m comment --comment "AWS CONNMARK CHAIN" -j RETURN`,
		`-A AWS-CONNMARK-CHAIN-0 -m comment --comment "AWS, CONNMARK" -j CONNMARK --set-xmark ` + c.hexMark(),
		`-A AWS-SNAT-CHAIN-0 -d ` + vpc + ` -m comment --comment "AWS SNAT CHAIN" -j RETURN`,
		`-A AWS-SNAT-CHAIN-0 ! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source ` +
			n.IP.String() + ` --random-fully`,
	}
}

func (awsCNI) pod(p *Pod) Declared {
	ip := p.IP.String()
	return Declared{Rules: []IPRule{{Priority: 512, Args: []string{"to", ip, "lookup", "main"},
		Shown: "from all to " + ip + " lookup main"}}}
}

func (c awsCNI) marks() []Mark {
	d := c.node(&Node{IP: netip.MustParseAddr("10.0.0.11")})
	var out []Mark
	for _, r := range append(d.Tables["mangle"], d.Tables["nat"]...) {
		if containsMark(r) {
			out = append(out, Mark{c.mark, c.mark, "AWS VPC CNI", r})
		}
	}
	h := c.hostRule()
	return append(out, Mark{c.mark, c.mark, "AWS VPC CNI", fmt.Sprintf("%d:\t%s", h.Priority, h.Shown)})
}
