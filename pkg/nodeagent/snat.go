package nodeagent

import (
	"fmt"
	"net/netip"
	"regexp"

	"github.com/vishvananda/netlink"
)

// snatRules is the nat POSTROUTING chain. Cluster destinations leave it untouched; steered packets are
// accepted as they are (the outer tunnel packet and the inner packet must keep their addresses, so
// nothing after us, such as a CNI masquerade, may rewrite them); then, per policy whose egress IP lives
// here, its selected pods toward its destinations are SNATed to the egress IP (packets with the egress
// mark are on their way to that SNAT). Nothing else ever gets an egress IP: unselected pods and host
// processes fall through to the node's usual NAT.
func snatRules(d *Desired, cfg Config) []string {
	out := []string{
		rule("cluster destinations keep their source", "-j RETURN", "-m set --match-set "+setCluster+" dst"),
		rule("steered packets are not masqueraded", "-j ACCEPT", "-m mark ! --mark "+hexMark(0, cfg.SteerMask),
			"-m mark ! --mark "+hexMark(cfg.steerMark(cfg.egressIndex()), cfg.SteerMask)),
	}
	for _, s := range d.SNATs {
		out = append(out, rule(fmt.Sprintf("policy %s leaves as %s", s.Policy, s.EgressIP),
			"-j SNAT --to-source "+s.EgressIP.String(), matchSets(s)...))
	}
	return out
}

var toSourceRE = regexp.MustCompile(`-j SNAT --to-source (\S+)`)

// heldEgressIPs lists the egress IPs that a nat chain SNATs to.
func heldEgressIPs(k *kernelState) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	t, ok := k.tables["nat"]
	if !ok {
		return out
	}
	for _, r := range t.chains[chainSNAT] {
		if m := toSourceRE.FindStringSubmatch(r); m != nil {
			if ip, err := netip.ParseAddr(m[1]); err == nil {
				out[ip] = true
			}
		}
	}
	return out
}

// flushConntrack deletes the conntrack entries of flows SNATed to ip: after the IP moves away they can
// only black-hole packets, and a stale entry would keep rewriting replies that no longer arrive here.
func (dp *Datapath) flushConntrack(ip netip.Addr) (uint, error) {
	f := &netlink.ConntrackFilter{}
	if err := f.AddIP(netlink.ConntrackReplyDstIP, ip.AsSlice()); err != nil {
		return 0, err
	}
	n, err := dp.nl.ConntrackDeleteFilters(netlink.ConntrackTable, netlink.FAMILY_V4, f)
	if err != nil {
		return n, fmt.Errorf("delete conntrack entries of %s: %w", ip, err)
	}
	return n, nil
}
