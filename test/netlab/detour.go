package netlab

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// detourTableBase plus a node's index is the router table that sends detoured traffic to that node.
const detourTableBase = 200

// Detour makes the router send the traffic between from's node IP and the external address dst
// through via, in both directions, as if via were one more router on the path: via receives it on its
// uplink and forwards it back out (no NAT, no tunnel). The throughput benchmark uses it as a control:
// the same machines and crossings as a tunnelled flow through via, without the tunnel. Other traffic,
// from's pods leaving with their own addresses included, keeps the direct path.
func (t *Topology) Detour(from, via *Node, dst netip.Addr) error {
	viaPort, fromPort := t.ports[via.IP], t.ports[from.IP]
	link, err := t.Fabric.NL.LinkByName(viaPort)
	if err != nil {
		return fmt.Errorf("%s: link %s: %w", t.Fabric.Name, viaPort, err)
	}
	table := detourTableBase + via.index
	r := &netlink.Route{Dst: ipNet(netip.MustParsePrefix("0.0.0.0/0")), Gw: via.IP.AsSlice(), LinkIndex: link.Attrs().Index, Table: table}
	if err := t.Fabric.NL.RouteReplace(r); err != nil {
		return fmt.Errorf("%s: detour table %d: %w", t.Fabric.Name, table, err)
	}
	for _, rule := range []struct {
		iif      string
		src, dst netip.Addr
	}{{fromPort, from.IP, dst}, {externalPort, dst, from.IP}} {
		if err := t.detourRule(rule.iif, rule.src, rule.dst, table); err != nil {
			return err
		}
	}
	// via forwards out of the interface the packets came in on; an ICMP redirect would only be noise.
	if err := via.NS.Sysctl("net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf."+Uplink+".send_redirects=0"); err != nil {
		return err
	}
	for _, src := range []netip.Addr{from.IP, dst} {
		if err := t.allowSource(viaPort, netip.PrefixFrom(src, 32)); err != nil {
			return err
		}
	}
	return nil
}

func (t *Topology) detourRule(iif string, src, dst netip.Addr, table int) error {
	rule := netlink.NewRule()
	rule.Priority, rule.Table, rule.IifName = 100, table, iif
	rule.Src, rule.Dst = ipNet(netip.PrefixFrom(src, 32)), ipNet(netip.PrefixFrom(dst, 32))
	if err := t.Fabric.NL.RuleAdd(rule); err != nil {
		return fmt.Errorf("%s: detour rule iif %s from %s to %s: %w", t.Fabric.Name, iif, src, dst, err)
	}
	return nil
}

// The lab's own VXLAN tunnel, for TunnelDetour: clear of egressgw's defaults (VNI 6464, UDP 4866).
const (
	labTunnelDevice = "netlabvx0"
	labTunnelVNI    = 99
	labTunnelPort   = 4900
	labTunnelRule   = 300 // priority of the rule on via that sends replies into the tunnel
)

// TunnelDetour is Detour with one more element: from sends its traffic to dst through a bare VXLAN
// tunnel of the lab's own to via (no netfilter rule, policy route or mark of egressgw's), and via sends
// the replies back through it. It is the control that separates what egressgw's rules cost from what
// the kernel's VXLAN costs, over the same machines and crossings as egressgw's tunnel.
func (t *Topology) TunnelDetour(from, via *Node, dst netip.Addr) error {
	if err := t.Detour(from, via, dst); err != nil {
		return err
	}
	for _, n := range []*Node{from, via} {
		peer := via
		if n == via {
			peer = from
		}
		if err := n.labTunnel(peer); err != nil {
			return err
		}
	}
	if err := from.tunnelRoute(netip.PrefixFrom(dst, 32), via.IP, 0); err != nil {
		return err
	}
	table := detourTableBase + from.index
	if err := via.tunnelRoute(netip.PrefixFrom(from.IP, 32), from.IP, table); err != nil {
		return err
	}
	rule := netlink.NewRule()
	rule.Priority, rule.Table, rule.IifName = labTunnelRule, table, Uplink
	rule.Src = ipNet(netip.PrefixFrom(dst, 32))
	if err := via.NS.NL.RuleAdd(rule); err != nil {
		return fmt.Errorf("%s: rule from %s into the lab tunnel: %w", via.NS.Name, dst, err)
	}
	return nil
}

// labTunnel creates the lab's VXLAN device toward peer, with the node IP as a /32 (the source that the
// emulated CNI's masquerade picks for it) and the uplink's MTU less the VXLAN overhead.
func (n *Node) labTunnel(peer *Node) error {
	uplink, err := n.NS.NL.LinkByName(Uplink)
	if err != nil {
		return fmt.Errorf("%s: link %s: %w", n.NS.Name, Uplink, err)
	}
	vx := &netlink.Vxlan{
		LinkAttrs: netlink.LinkAttrs{Name: labTunnelDevice, MTU: uplink.Attrs().MTU - 50},
		VxlanId:   labTunnelVNI, Port: labTunnelPort, VtepDevIndex: uplink.Attrs().Index,
		SrcAddr: n.IP.AsSlice(), Group: peer.IP.AsSlice(),
	}
	if err := n.NS.NL.LinkAdd(vx); err != nil {
		return fmt.Errorf("%s: create %s: %w", n.NS.Name, labTunnelDevice, err)
	}
	return n.NS.LinkUp(labTunnelDevice, netip.PrefixFrom(n.IP, 32))
}

// tunnelRoute routes dst through the lab tunnel to gw (which answers ARP there: it holds gw), in table
// (0: main).
func (n *Node) tunnelRoute(dst netip.Prefix, gw netip.Addr, table int) error {
	link, err := n.NS.NL.LinkByName(labTunnelDevice)
	if err != nil {
		return fmt.Errorf("%s: link %s: %w", n.NS.Name, labTunnelDevice, err)
	}
	r := &netlink.Route{Dst: ipNet(dst), Gw: gw.AsSlice(), LinkIndex: link.Attrs().Index, Table: table,
		Flags: int(netlink.FLAG_ONLINK)}
	if err := n.NS.NL.RouteReplace(r); err != nil {
		return fmt.Errorf("%s: route %s via %s dev %s: %w", n.NS.Name, dst, gw, labTunnelDevice, err)
	}
	return nil
}
