package nodeagent

import "fmt"

// markRules is the mangle PREROUTING chain. In order:
//  1. replies of flows that came in through the tunnel get the reply mark, so the return table sends
//     them back through the tunnel (gateway side; no asymmetric path);
//  2. flows arriving through the tunnel are remembered with the reply bit in their connmark;
//  3. cluster destinations leave the chain untouched;
//  4. per policy, new and established original-direction packets of selected local pods toward its
//     destinations get their gateway's mark. A packet already marked keeps its first policy's mark;
//  5. per policy whose egress IP lives here, the packets it will SNAT get the egress mark: it routes them
//     out of the egress interface when the gateway has one, and it is what lets a tunnelled packet pass
//     the gateway's FORWARD filter.
func markRules(d *Desired, cfg Config) []string {
	reply := hexMark(cfg.ReplyMark, cfg.ReplyMark)
	out := []string{
		rule("replies of tunnelled flows go back through the tunnel", "-j MARK --set-xmark "+reply,
			"-m conntrack --ctdir REPLY", "-m connmark --mark "+reply),
		rule("remember flows that arrived through the tunnel", "-j CONNMARK --set-xmark "+reply,
			"-i "+cfg.Device, "-m conntrack --ctdir ORIGINAL"),
		rule("cluster destinations are never steered", "-j RETURN",
			"-m set --match-set "+setCluster+" dst"),
	}
	for _, s := range d.Steers {
		mark := hexMark(cfg.steerMark(s.Gateway.Index), cfg.SteerMask)
		matches := append([]string{"-m mark --mark " + hexMark(0, cfg.SteerMask), "-m conntrack --ctdir ORIGINAL"},
			matchSets(s)...)
		out = append(out, rule(fmt.Sprintf("steer policy %s to gateway %s", s.Policy, s.Gateway.IP),
			"-j MARK --set-xmark "+mark, matches...))
	}
	egress := hexMark(cfg.steerMark(cfg.egressIndex()), cfg.SteerMask)
	for _, s := range d.SNATs {
		matches := append([]string{"-m mark --mark " + hexMark(0, cfg.SteerMask), "-m conntrack --ctdir ORIGINAL"},
			matchSets(s)...)
		out = append(out, rule(fmt.Sprintf("policy %s leaves through the egress interface", s.Policy),
			"-j MARK --set-xmark "+egress, matches...))
	}
	return out
}

// mssRules clamp the MSS of TCP handshakes entering the tunnel (both the pod's SYN on the source node
// and the server's SYN-ACK on the gateway) to what fits in the tunnel MTU, so that full-size segments
// are never black-holed on paths that drop ICMP.
func mssRules(cfg Config, mtu int) []string {
	return []string{rule("TCP entering the tunnel fits its MTU", fmt.Sprintf("-j TCPMSS --set-mss %d", mtu-40),
		"-o "+cfg.Device, "-p tcp -m tcp --tcp-flags SYN,RST SYN")}
}
