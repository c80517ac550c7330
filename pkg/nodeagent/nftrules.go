package nodeagent

import (
	"fmt"
	"net/netip"
	"strings"
)

// The rules of egressgw's nftables table, rendered exactly as `nft list` prints them (marks as eight
// hexadecimal digits, counters stripped), so that the rules read back compare equal to the rules
// rendered and a second Apply changes nothing.

// nftRule joins a rule's statements and its comment, which every rule carries.
func nftRule(comment string, stmts ...string) string {
	return strings.Join(nonEmpty(stmts), " ") + " comment " + quoteNftComment(commentPrefix+comment)
}

// nftCommentMax is the longest comment nft accepts (NFTNL_UDATA_COMMENT_MAXLEN, 128 with its NUL).
const nftCommentMax = 127

// quoteNftComment quotes a comment for nft; characters nft cannot carry in a quoted string are
// replaced, and the comment is cut to what nft accepts.
func quoteNftComment(c string) string {
	c = strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < ' ' || r > '~' {
			return '_'
		}
		return r
	}, c)
	if len(c) > nftCommentMax {
		c = c[:nftCommentMax]
	}
	return `"` + c + `"`
}

func nftHex(v uint32) string { return fmt.Sprintf("0x%08x", v) }

// markIs and markIsNot compare the bits of mask in the packet mark with value.
func markIs(mask, value uint32) string {
	return "meta mark & " + nftHex(mask) + " == " + nftHex(value)
}

func markIsNot(mask, value uint32) string {
	return "meta mark & " + nftHex(mask) + " != " + nftHex(value)
}

// orMark sets bits in the packet mark; every caller has checked that they were clear, or that setting
// them is what is meant (the reply bit).
func orMark(bits uint32) string { return "meta mark set meta mark | " + nftHex(bits) }

// policyMatch renders a policy's set matches: source, destination, and not-excluded.
func (r PolicyRule) nftMatch() []string {
	m := []string{"ip saddr @" + r.Src}
	if r.Dst != "" {
		m = append(m, "ip daddr @"+r.Dst)
	}
	if r.Excluded != "" {
		m = append(m, "ip daddr != @"+r.Excluded)
	}
	return m
}

// preroutingRules is the prerouting chain (before the iptables mangle table). In order:
//  1. replies of flows that came in through the tunnel get the reply mark, so the return table sends
//     them back through the tunnel (gateway side; no asymmetric path);
//  2. flows arriving through the tunnel are remembered with the reply bit in their connmark;
//  3. cluster destinations leave the chain untouched;
//  4. per policy, original-direction packets of selected local pods toward its destinations get their
//     gateway's mark. A packet already marked keeps its first policy's mark;
//  5. per policy whose egress IP lives here, the packets it will SNAT get the egress mark: it routes them
//     out of the egress interface when the gateway has one, and it is what lets a tunnelled packet pass
//     the gateway's forward chain.
//
// Marks set here stay on the packet through every later chain, so another owner's ACCEPT in the mangle
// table (Calico's RELATED,ESTABLISHED) cannot keep a packet from being steered.
func preroutingRules(d *Desired, cfg Config) []string {
	out := []string{
		nftRule("replies of tunnelled flows go back through the tunnel", "ct direction reply",
			"ct mark & "+nftHex(cfg.ReplyMark)+" == "+nftHex(cfg.ReplyMark), orMark(cfg.ReplyMark)),
		nftRule("remember flows that arrived through the tunnel", fmt.Sprintf("iifname %q", cfg.Device),
			"ct direction original", "ct mark set ct mark | "+nftHex(cfg.ReplyMark)),
		nftRule("cluster destinations are never steered", "ip daddr @"+setCluster, "return"),
	}
	for _, s := range d.Steers {
		stmts := append([]string{markIs(cfg.SteerMask, 0), "ct direction original"}, s.nftMatch()...)
		out = append(out, nftRule(fmt.Sprintf("steer policy %s to gateway %s", s.Policy, s.Gateway.IP),
			append(stmts, orMark(cfg.steerMark(s.Gateway.Index)))...))
	}
	for _, s := range d.SNATs {
		stmts := append([]string{markIs(cfg.SteerMask, 0), "ct direction original"}, s.nftMatch()...)
		out = append(out, nftRule(fmt.Sprintf("policy %s leaves through the egress interface", s.Policy),
			append(stmts, orMark(cfg.steerMark(cfg.egressIndex())))...))
	}
	return out
}

// postroutingRules is the nat chain, consulted before the iptables nat table (and any other NAT chain
// at the srcnat priority). The kernel stops at the first NAT chain that gives a new connection a source
// binding, so: cluster destinations get none here (the node's usual NAT applies); steered packets get an
// identity binding, which keeps the CNI's masquerade from rewriting them on their way into the tunnel;
// and per policy whose egress IP lives here, its selected pods toward its destinations are SNATed to
// the egress IP. An ordinary pod's packet matches nothing, gets no binding here and is SNATed by the CNI
// as before.
func postroutingRules(d *Desired, cfg Config) []string {
	egress := cfg.steerMark(cfg.egressIndex())
	out := []string{
		nftRule("cluster destinations keep their source", "ip daddr @"+setCluster, "return"),
		nftRule("steered packets keep their source: no later NAT rule rewrites them",
			markIsNot(cfg.SteerMask, 0), markIsNot(cfg.SteerMask, egress), "snat to ip saddr"),
	}
	for _, s := range d.SNATs {
		out = append(out, nftRule(fmt.Sprintf("policy %s leaves as %s", s.Policy, s.EgressIP),
			append(s.nftMatch(), "counter", "snat to "+s.EgressIP.String())...))
	}
	return out
}

// forwardRules is the forward chain, before the iptables filter table. A drop in any base chain is
// final, so what egressgw drops here stays dropped whatever another owner accepts later. It clamps the
// MSS of TCP handshakes entering the tunnel (the pod's SYN on the source node, the server's SYN-ACK on
// the gateway) to what fits in the tunnel MTU, never raising it (as iptables' TCPMSS), so full-size
// segments are not black-holed on paths that drop ICMP; and it drops, counted, what must never leave:
// traffic of selected pods whose policy has no usable egress IP (fail closed); tunnelled packets that
// no SNAT rule of this gateway takes (a source node that has not re-steered after a move, or a packet
// forced into the tunnel), which would otherwise leave with the gateway's own address; and traffic to
// the egress IPs held here that conntrack did not turn back into a reply for a pod: the IP is routed to
// this node but is not an address of it, so anything else would loop.
func forwardRules(d *Desired, cfg Config, mtu int) []string {
	mss := fmt.Sprint(mtu - 40)
	out := []string{nftRule("TCP entering the tunnel fits its MTU", fmt.Sprintf("oifname %q", cfg.Device),
		"tcp flags syn / syn,rst", "tcp option maxseg size > "+mss, "tcp option maxseg size set "+mss)}
	for _, b := range d.Blocks {
		stmts := append(b.nftMatch(), "ip daddr != @"+setCluster, "counter", "drop")
		out = append(out, nftRule(failClosedComment+b.Policy, stmts...))
	}
	out = append(out, nftRule(unmatchedTunnelComment, fmt.Sprintf("iifname %q", cfg.Device), "ct direction original",
		markIsNot(cfg.SteerMask, cfg.steerMark(cfg.egressIndex())), "counter", "drop"))
	seen := map[netip.Addr]bool{}
	for _, s := range d.SNATs {
		if !seen[s.EgressIP] {
			seen[s.EgressIP] = true
			out = append(out, nftRule(egressIPComment(s.EgressIP), "ip daddr "+s.EgressIP.String(), "counter", "drop"))
		}
	}
	return out
}

func egressIPComment(ip netip.Addr) string { return "egress IP " + ip.String() + " takes replies only" }

// inputRules is the input chain: the tunnel port accepts packets only from cluster nodes.
func inputRules(cfg Config) []string {
	return []string{nftRule(spoofedTunnelComment, fmt.Sprintf("udp dport %d", cfg.Port),
		"ip saddr != @"+setNodes, "counter", "drop")}
}
