package nodeagent

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
)

// egressAddrLabelSuffix labels the address the datapath gives an egress interface, so that Uninstall
// finds exactly what it added (the label of an IPv4 address starts with its device's name).
const egressAddrLabelSuffix = ":egw"

// ensureEgressLink prepares the gateway's dedicated egress interface: found by its MAC, up, and holding
// its own address as a /32 (the reverse-path check drops what arrives on a device without an IPv4
// address; a /32 adds no route to the main table, so the node's own traffic keeps using the uplink). It
// returns the link, or nil when want is nil.
func (dp *Datapath) ensureEgressLink(want *EgressLink) (netlink.Link, int, error) {
	if want == nil {
		return nil, 0, nil
	}
	link, err := dp.linkByMAC(want)
	if err != nil {
		return nil, 0, err
	}
	changed := 0
	if link.Attrs().Flags&net.FlagUp == 0 {
		if err := dp.nl.LinkSetUp(link); err != nil {
			return nil, 0, fmt.Errorf("set egress interface %s up: %w", link.Attrs().Name, err)
		}
		changed++
	}
	n, err := dp.ensureEgressAddress(link, want.Address.Addr())
	return link, changed + n, err
}

func (dp *Datapath) linkByMAC(want *EgressLink) (netlink.Link, error) {
	all, err := dp.nl.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	for _, l := range all {
		if bytes.Equal(l.Attrs().HardwareAddr, want.MAC) && l.Type() != "vxlan" {
			return l, nil
		}
	}
	return nil, fmt.Errorf("egress interface with MAC %s (address %s) is not on this node yet: "+
		"SNATed traffic cannot leave until it is attached", want.MAC, want.Address)
}

// ensureEgressAddress adds addr/32 unless the interface already holds addr in any form (the OS image may
// have configured it).
func (dp *Datapath) ensureEgressAddress(link netlink.Link, addr netip.Addr) (int, error) {
	addrs, err := dp.nl.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return 0, fmt.Errorf("list %s addresses: %w", link.Attrs().Name, err)
	}
	for _, a := range addrs {
		if prefixOf(a.IPNet).Addr() == addr {
			return 0, nil
		}
	}
	a := &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(addr, 32))}
	if label := link.Attrs().Name + egressAddrLabelSuffix; len(label) < 16 {
		a.Label = label
	}
	if err := dp.nl.AddrAdd(link, a); err != nil {
		return 0, fmt.Errorf("add %s/32 to egress interface %s: %w", addr, link.Attrs().Name, err)
	}
	return 1, nil
}

// removeEgressAddresses deletes the addresses ensureEgressAddress added, found by their label.
func (dp *Datapath) removeEgressAddresses() (int, error) {
	addrs, err := dp.nl.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return 0, fmt.Errorf("list addresses: %w", err)
	}
	var errs []error
	changed := 0
	for _, a := range addrs {
		if !strings.HasSuffix(a.Label, egressAddrLabelSuffix) {
			continue
		}
		link, err := dp.nl.LinkByIndex(a.LinkIndex)
		if err == nil {
			err = dp.nl.AddrDel(link, &a)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("delete egress address %s: %w", a.IPNet, err))
			continue
		}
		changed++
	}
	return changed, errors.Join(errs...)
}

func sameEgressLink(a, b *EgressLink) bool {
	if a == nil || b == nil {
		return a == b
	}
	return bytes.Equal(a.MAC, b.MAC) && a.Address == b.Address && a.Router == b.Router
}
