package nodeagent

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink"
)

// uplink finds the underlay interface: the configured one, or the one that holds the node's IP.
func (dp *Datapath) uplink(nodeIP netip.Addr) (netlink.Link, error) {
	if dp.cfg.Uplink != "" {
		l, err := dp.nl.LinkByName(dp.cfg.Uplink)
		if err != nil {
			return nil, fmt.Errorf("uplink %s: %w", dp.cfg.Uplink, err)
		}
		return l, nil
	}
	addrs, err := dp.nl.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && ip == nodeIP {
			link, err := dp.nl.LinkByIndex(a.LinkIndex)
			if err != nil || link.Attrs().Name != dp.cfg.Device {
				return link, err
			}
		}
	}
	return nil, fmt.Errorf("no interface holds the node IP %s: set the uplink explicitly", nodeIP)
}

// tunnelMTU is the configured MTU or the uplink's minus the VXLAN overhead.
func (dp *Datapath) tunnelMTU(uplink netlink.Link) int {
	if dp.cfg.MTU != 0 {
		return dp.cfg.MTU
	}
	return uplink.Attrs().MTU - vxlanHeaderOverhead
}

// wantLink is the VXLAN device the node should have: bound to the uplink and the node IP, no learning
// (peers are static), the node's deterministic MAC.
func (dp *Datapath) wantLink(uplink netlink.Link, nodeIP netip.Addr) *netlink.Vxlan {
	return &netlink.Vxlan{
		LinkAttrs: netlink.LinkAttrs{
			Name: dp.cfg.Device, MTU: dp.tunnelMTU(uplink), HardwareAddr: tunnelMAC(nodeIP),
		},
		VxlanId:      int(dp.cfg.VNI),
		VtepDevIndex: uplink.Attrs().Index,
		SrcAddr:      nodeIP.AsSlice(),
		Port:         int(dp.cfg.Port),
		Learning:     false,
	}
}

// ensureLink creates the device or repairs it: a device with the wrong VXLAN parameters (or not a VXLAN
// device at all) is replaced, a wrong MTU or MAC is set in place, and the device is brought up. It
// returns the device and whether it changed anything.
func (dp *Datapath) ensureLink(want *netlink.Vxlan) (netlink.Link, int, error) {
	have, err := dp.nl.LinkByName(want.Name)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		return dp.createLink(want)
	case err != nil:
		return nil, 0, fmt.Errorf("look up %s: %w", want.Name, err)
	}
	if !sameTunnel(have, want) {
		dp.log.Info("replacing tunnel device with different parameters", "device", want.Name)
		if err := dp.nl.LinkDel(have); err != nil {
			return nil, 0, fmt.Errorf("delete %s: %w", want.Name, err)
		}
		return dp.createLink(want)
	}
	n, err := dp.tuneLink(have, want)
	return have, n, err
}

func (dp *Datapath) createLink(want *netlink.Vxlan) (netlink.Link, int, error) {
	if err := dp.nl.LinkAdd(want); err != nil && !errors.Is(err, syscall.EEXIST) {
		return nil, 0, fmt.Errorf("create %s: %w", want.Name, err)
	}
	link, err := dp.nl.LinkByName(want.Name)
	if err != nil {
		return nil, 0, err
	}
	if err := dp.nl.LinkSetUp(link); err != nil {
		return nil, 0, fmt.Errorf("set %s up: %w", want.Name, err)
	}
	return link, 1, nil
}

// sameTunnel compares what cannot be changed on a live VXLAN device.
func sameTunnel(have netlink.Link, want *netlink.Vxlan) bool {
	v, ok := have.(*netlink.Vxlan)
	return ok && v.VxlanId == want.VxlanId && v.Port == want.Port && v.VtepDevIndex == want.VtepDevIndex &&
		v.SrcAddr.Equal(want.SrcAddr) && !v.Learning
}

// tuneLink fixes MTU, MAC and up state in place.
func (dp *Datapath) tuneLink(have netlink.Link, want *netlink.Vxlan) (int, error) {
	changed := 0
	a := have.Attrs()
	if a.MTU != want.MTU {
		if err := dp.nl.LinkSetMTU(have, want.MTU); err != nil {
			return changed, fmt.Errorf("set %s mtu: %w", want.Name, err)
		}
		changed++
	}
	if a.HardwareAddr.String() != want.HardwareAddr.String() {
		if err := dp.nl.LinkSetHardwareAddr(have, want.HardwareAddr); err != nil {
			return changed, fmt.Errorf("set %s mac: %w", want.Name, err)
		}
		changed++
	}
	if a.Flags&net.FlagUp == 0 {
		if err := dp.nl.LinkSetUp(have); err != nil {
			return changed, fmt.Errorf("set %s up: %w", want.Name, err)
		}
		changed++
	}
	return changed, nil
}

// ensureAddress gives the device the node IP as a /32 and no other IPv4 address. The kernel's
// reverse-path check rejects every packet that arrives on a device without an IPv4 address as soon as
// rp_filter is on (strict or loose), so the device needs one; the node IP is the natural choice (no
// prefix route, and the source of any ICMP error the node sends into the tunnel).
func (dp *Datapath) ensureAddress(link netlink.Link, nodeIP netip.Addr) (int, error) {
	addrs, err := dp.nl.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return 0, fmt.Errorf("list %s addresses: %w", dp.cfg.Device, err)
	}
	want := netip.PrefixFrom(nodeIP, 32)
	found, changed := false, 0
	for i := range addrs {
		if prefixOf(addrs[i].IPNet) == want {
			found = true
			continue
		}
		if err := dp.nl.AddrDel(link, &addrs[i]); err != nil {
			return changed, fmt.Errorf("delete %s from %s: %w", addrs[i].IPNet, dp.cfg.Device, err)
		}
		changed++
	}
	if found {
		return changed, nil
	}
	if err := dp.nl.AddrAdd(link, &netlink.Addr{IPNet: ipNet(want)}); err != nil {
		return changed, fmt.Errorf("add %s to %s: %w", want, dp.cfg.Device, err)
	}
	return changed + 1, nil
}

// observePeers reads the permanent neighbour and FDB entries of our device.
func (dp *Datapath) observePeers(link netlink.Link, k *kernelState) error {
	neigh, err := dp.nl.NeighList(link.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list neighbours: %w", err)
	}
	for _, n := range neigh {
		if ip, ok := netip.AddrFromSlice(n.IP.To4()); ok && n.State&netlink.NUD_PERMANENT != 0 {
			k.neigh[ip] = macOf(n.HardwareAddr)
		}
	}
	fdb, err := dp.nl.NeighList(link.Attrs().Index, syscall.AF_BRIDGE)
	if err != nil {
		return fmt.Errorf("list fdb: %w", err)
	}
	for _, n := range fdb {
		if ip, ok := netip.AddrFromSlice(n.IP.To4()); ok {
			k.fdb[ip] = macOf(n.HardwareAddr)
		}
	}
	return nil
}

// addPeers writes every wanted neighbour and FDB entry that is missing or different.
func (dp *Datapath) addPeers(link netlink.Link, have, want *kernelState) (int, error) {
	return bothPeerTables(have, want, func(h, w map[netip.Addr]macAddr, entry peerEntry) (int, error) {
		return dp.writeEntries(link, h, w, entry)
	})
}

// bothPeerTables runs op on the neighbour entries, then on the FDB entries, and adds up the changes.
func bothPeerTables(have, want *kernelState, op func(h, w map[netip.Addr]macAddr, entry peerEntry) (int, error)) (int, error) {
	n, err := op(have.neigh, want.neigh, neighEntry)
	if err != nil {
		return n, err
	}
	m, err := op(have.fdb, want.fdb, fdbEntry)
	return n + m, err
}

func (dp *Datapath) writeEntries(link netlink.Link, have, want map[netip.Addr]macAddr, entry peerEntry) (int, error) {
	changed := 0
	for ip, mac := range want {
		if have[ip] == mac {
			continue
		}
		if err := dp.nl.NeighSet(entry(link, ip, mac)); err != nil {
			return changed, fmt.Errorf("peer %s (%s): %w", ip, mac, err)
		}
		changed++
	}
	return changed, nil
}

// removePeers deletes entries of our device that are no longer wanted.
func (dp *Datapath) removePeers(link netlink.Link, have, want *kernelState) (int, error) {
	return bothPeerTables(have, want, func(h, w map[netip.Addr]macAddr, entry peerEntry) (int, error) {
		return dp.deleteEntries(link, h, w, entry)
	})
}

func (dp *Datapath) deleteEntries(link netlink.Link, have, want map[netip.Addr]macAddr, entry peerEntry) (int, error) {
	changed := 0
	for ip, mac := range have {
		if want[ip] == mac {
			continue
		}
		if err := dp.nl.NeighDel(entry(link, ip, mac)); err != nil && !errors.Is(err, syscall.ENOENT) {
			return changed, fmt.Errorf("delete peer %s (%s): %w", ip, mac, err)
		}
		changed++
	}
	return changed, nil
}

// peerEntry builds the neighbour or FDB entry that maps a peer's IP and tunnel MAC.
type peerEntry func(link netlink.Link, ip netip.Addr, mac macAddr) *netlink.Neigh

func neighEntry(link netlink.Link, ip netip.Addr, mac macAddr) *netlink.Neigh {
	return &netlink.Neigh{LinkIndex: link.Attrs().Index, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT,
		IP: ip.AsSlice(), HardwareAddr: mac.hardwareAddr()}
}

// fdbEntry tunnels frames for mac to the node at ip.
func fdbEntry(link netlink.Link, ip netip.Addr, mac macAddr) *netlink.Neigh {
	n := neighEntry(link, ip, mac)
	n.Family, n.Flags = syscall.AF_BRIDGE, netlink.NTF_SELF
	return n
}
