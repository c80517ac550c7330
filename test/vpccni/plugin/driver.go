package plugin

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The driver's constants (pkg/networkutils/network.go, helper.go).
const (
	toContainerRulePriority = 512  // "from all to <pod> lookup main"
	fromPodRulePriority     = 1536 // "from <pod> lookup <ENI table>" for pods on secondary ENIs
)

// podGateway is CalculatePodIPv4GatewayIP(0): the pod's next hop, resolved by a static ARP entry.
var podGateway = net.IPv4(169, 254, 1, 1)

// HostVethName is GeneratePodHostVethName (pkg/networkutils/names.go): the prefix and the first 11 hex
// digits of the SHA-1 of "namespace.name".
func HostVethName(prefix, namespace, name string) string {
	sum := sha1.Sum([]byte(namespace + "." + name))
	return prefix + hex.EncodeToString(sum[:])[:11]
}

// veth is what SetupPodNetwork needs for one pod interface.
type veth struct {
	host, container string
	ip              netip.Addr
	routeTable      int
	mtu             int
}

// setupPodNetwork is the driver's SetupPodNetwork for a pod on an ENI (not a branch ENI), run from the
// node's namespace: the veth pair with its host end created in the node's namespace under a random
// locally administered MAC, the pod's /32 address, its connected route to 169.254.1.1 and default route
// through it, the permanent ARP entry for that gateway, then on the node the /32 route to the pod on the
// host veth and the priority-512 rule; a pod on a secondary ENI also gets "from <pod> lookup <table>".
func setupPodNetwork(v veth, netnsPath string) error {
	if old, err := netlink.LinkByName(v.host); err == nil {
		if err := netlink.LinkDel(old); err != nil {
			return fmt.Errorf("delete the old host veth %s: %w", v.host, err)
		}
	}
	mac, err := randomMAC()
	if err != nil {
		return err
	}
	host, err := netns.Get()
	if err != nil {
		return fmt.Errorf("the node's namespace: %w", err)
	}
	defer host.Close()
	pod, err := netns.GetFromPath(netnsPath)
	if err != nil {
		return fmt.Errorf("the pod's namespace %s: %w", netnsPath, err)
	}
	defer pod.Close()
	inPod, err := netlink.NewHandleAt(pod)
	if err != nil {
		return err
	}
	defer inPod.Close()
	if err := inPod.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: v.container, MTU: v.mtu, Flags: net.FlagUp},
		PeerName: v.host, PeerHardwareAddr: mac, PeerNamespace: netlink.NsFd(int(host))}); err != nil {
		return fmt.Errorf("create the veth pair %s/%s: %w", v.container, v.host, err)
	}
	hostLink, err := netlink.LinkByName(v.host)
	if err != nil {
		return fmt.Errorf("find the host veth %s: %w", v.host, err)
	}
	if err := setHostVethV6Sysctls(v.host); err != nil {
		return err
	}
	if err := netlink.LinkSetUp(hostLink); err != nil {
		return fmt.Errorf("set %s up: %w", v.host, err)
	}
	if err := setupInPod(inPod, v, mac); err != nil {
		return err
	}
	return setupHostRoutes(hostLink, v)
}

// setupInPod is createVethPairContext.run inside the pod's namespace.
func setupInPod(h *netlink.Handle, v veth, hostMAC net.HardwareAddr) error {
	link, err := h.LinkByName(v.container)
	if err != nil {
		return fmt.Errorf("find %s in the pod: %w", v.container, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up in the pod: %w", v.container, err)
	}
	gw := &net.IPNet{IP: podGateway, Mask: net.CIDRMask(32, 32)}
	if err := h.RouteReplace(&netlink.Route{LinkIndex: link.Attrs().Index, Scope: netlink.SCOPE_LINK, Dst: gw}); err != nil {
		return fmt.Errorf("route to the pod's gateway: %w", err)
	}
	if err := h.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Scope: netlink.SCOPE_UNIVERSE,
		Dst: &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}, Gw: podGateway}); err != nil {
		return fmt.Errorf("the pod's default route: %w", err)
	}
	if err := h.AddrAdd(link, &netlink.Addr{IPNet: ipNet(v.ip)}); err != nil {
		return fmt.Errorf("the pod's address %s: %w", v.ip, err)
	}
	if err := h.NeighAdd(&netlink.Neigh{LinkIndex: link.Attrs().Index, State: netlink.NUD_PERMANENT, IP: podGateway,
		HardwareAddr: hostMAC}); err != nil {
		return fmt.Errorf("the static ARP entry of the pod's gateway: %w", err)
	}
	return nil
}

// setupHostRoutes is setupIPBasedContainerRouteRules on the node.
func setupHostRoutes(hostLink netlink.Link, v veth) error {
	dst := ipNet(v.ip)
	if err := netlink.RouteReplace(&netlink.Route{LinkIndex: hostLink.Attrs().Index, Scope: netlink.SCOPE_LINK, Dst: dst,
		Table: unix.RT_TABLE_MAIN}); err != nil {
		return fmt.Errorf("route to the pod %s on %s: %w", v.ip, v.host, err)
	}
	to := netlink.NewRule()
	to.Dst, to.Priority, to.Table = dst, toContainerRulePriority, unix.RT_TABLE_MAIN
	if err := netlink.RuleAdd(to); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("rule to the pod %s: %w", v.ip, err)
	}
	if v.routeTable == unix.RT_TABLE_MAIN {
		return nil
	}
	from := netlink.NewRule()
	from.Src, from.Priority, from.Table = dst, fromPodRulePriority, v.routeTable
	if err := netlink.RuleAdd(from); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("rule from the pod %s: %w", v.ip, err)
	}
	return nil
}

// teardownPodNetwork is TeardownPodNetwork: the rules and the route go; the veth goes with the pod's
// namespace, which the runtime deletes.
func teardownPodNetwork(ip netip.Addr, routeTable int) error {
	dst := ipNet(ip)
	to := netlink.NewRule()
	to.Dst, to.Priority, to.Table = dst, toContainerRulePriority, unix.RT_TABLE_MAIN
	if err := netlink.RuleDel(to); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete the rule to the pod %s: %w", ip, err)
	}
	if routeTable != unix.RT_TABLE_MAIN && routeTable != 1 {
		from := netlink.NewRule()
		from.Src, from.Priority, from.Table = dst, fromPodRulePriority, routeTable
		if err := netlink.RuleDel(from); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("delete the rule from the pod %s: %w", ip, err)
		}
	}
	// The kernel drops the route with the host veth; deleting it first is best effort, as in the CNI.
	_ = netlink.RouteDel(&netlink.Route{Scope: netlink.SCOPE_LINK, Dst: dst, Table: unix.RT_TABLE_MAIN})
	return nil
}

// setHostVethV6Sysctls: accept_ra=0, accept_redirects=1, forwarding=0 on the host veth before it comes
// up; a kernel without IPv6 has no such files, which the CNI ignores.
func setHostVethV6Sysctls(dev string) error {
	for key, value := range map[string]string{"accept_ra": "0", "accept_redirects": "1", "forwarding": "0"} {
		path := filepath.Join("/proc/sys/net/ipv6/conf", dev, key)
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	return nil
}

// randomMAC is generateUniqueRandomMAC: random, locally administered, unicast.
func randomMAC() (net.HardwareAddr, error) {
	mac := make(net.HardwareAddr, 6)
	if _, err := rand.Read(mac); err != nil {
		return nil, err
	}
	mac[0] = mac[0]&^0x01 | 0x02
	return mac, nil
}

func ipNet(ip netip.Addr) *net.IPNet {
	return &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(32, 32)}
}
