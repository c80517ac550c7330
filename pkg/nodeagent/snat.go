package nodeagent

import (
	"fmt"
	"net/netip"
	"regexp"

	"github.com/vishvananda/netlink"
)

var snatToRE = regexp.MustCompile(` snat to (\d+\.\d+\.\d+\.\d+) `)

// heldEgressIPs lists the egress IPs that our nat chain SNATs to.
func heldEgressIPs(k *kernelState) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	if k.nft == nil || k.nft.chains["postrouting"] == nil {
		return out
	}
	for _, r := range k.nft.chains["postrouting"].rules {
		if m := snatToRE.FindStringSubmatch(r); m != nil {
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
