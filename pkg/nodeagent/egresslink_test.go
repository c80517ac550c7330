package nodeagent

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/egressgw/egressgw/test/netlab"
)

// eniIP is the primary address of the gateway's dedicated egress interface in the egress-link tests.
var eniIP = netip.MustParseAddr("10.0.0.50")

// egressLinkLab is a two-node lab whose gateway node2 carries the egress IP on a second interface,
// as on AWS with a dedicated ENI: the fabric delivers the egress IP to that interface only and drops a
// packet with the egress IP as its source from any other (the per-ENI source/destination check).
func egressLinkLab(t *testing.T, prof netlab.Profile) (*lab, *netlab.ENI, PolicyView) {
	l := newLab(t, prof, 2, 2)
	eni, err := l.topo.AddENI(context.Background(), l.node(2), "eth1", eniIP)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.topo.RouteToENI(egressIP, eni); err != nil {
		t.Fatal(err)
	}
	p := PolicyView{
		Key: "payments/to-partner", Pods: podRefs(l.pod(1, 1), l.pod(2, 1)),
		DestinationCIDRs: []netip.Prefix{netlab.ExternalSubnet},
		EgressIP:         egressIP, GatewayNode: "node2",
	}
	return l, eni, p
}

// applyWithEgressLink programs node1 with the plain view and the gateway node2 with its egress
// interface (the view is per node: only the gateway has one), returning node2's view.
func (l *lab) applyWithEgressLink(eni *netlab.ENI, p PolicyView) View {
	l.t.Helper()
	v := l.view(p)
	l.applyNode("node1", v)
	v.EgressLink = &EgressLink{MAC: eni.MAC, Address: netip.PrefixFrom(eni.IP, netlab.VPCSubnet.Bits()), Router: netlab.RouterIP}
	l.applyNode("node2", v)
	return v
}

// TestEgressLeavesThroughTheEgressInterface: SNATed packets leave through the dedicated interface,
// which the agent brings up; the node's own and unselected traffic keeps the uplink and the node's IP.
func TestEgressLeavesThroughTheEgressInterface(t *testing.T) {
	forProfiles(t, egressLinkProfiles, testEgressLeavesThroughTheEgressInterface)
}

func testEgressLeavesThroughTheEgressInterface(t *testing.T, prof netlab.Profile) {
	l, eni, p := egressLinkLab(t, prof)
	v := l.applyWithEgressLink(eni, p)
	before := linkTX(t, eni)
	for _, proto := range []string{"tcp", "udp"} {
		l.expectSource(l.pod(1, 1).NS, proto, serverTCP, egressIP, "selected pod on node1 (tunnel, then the egress interface)")
		l.expectSource(l.pod(2, 1).NS, proto, serverTCP, egressIP, "selected pod on the gateway node")
		l.expectOrdinary(l.pod(2, 2), proto, serverTCP, "unselected pod on the gateway node")
		l.expectSource(l.node(2).NS, proto, serverTCP, l.node(2).IP, "the gateway node itself")
	}
	if sent := linkTX(t, eni) - before; sent < 4 {
		t.Errorf("the egress interface sent %d packets for 4 selected requests", sent)
	}
	t.Run("mtu", func(t *testing.T) { checkLargeTransfers(t, l) })
	if ch := l.applyNode("node2", v); ch.Total() != 0 {
		t.Errorf("second apply on the gateway changed %+v", ch)
	}
	link, err := l.node(2).NS.NL.LinkByName(eni.Name)
	if err != nil {
		t.Fatal(err)
	}
	dp := l.dps["node2"]
	if _, err := dp.Uninstall(context.Background()); err != nil {
		t.Fatal(err)
	}
	if addrs, _ := l.node(2).NS.NL.AddrList(link, netlink.FAMILY_V4); len(addrs) != 0 {
		t.Errorf("after uninstall the egress interface keeps %v", addrs)
	}
}

// TestEgressWithoutTheEgressInterfaceIsDropped shows why the interface matters: SNATed out of the
// uplink, the packets carry an address that is not the uplink's, and the cloud drops them.
func TestEgressWithoutTheEgressInterfaceIsDropped(t *testing.T) {
	forProfiles(t, egressLinkProfiles, testEgressWithoutTheEgressInterfaceIsDropped)
}

func testEgressWithoutTheEgressInterfaceIsDropped(t *testing.T, prof netlab.Profile) {
	l, _, p := egressLinkLab(t, prof)
	l.apply(l.view(p))
	if seen := sendUntilSeen(t, l, l.pod(2, 1).NS, "out-of-the-uplink"); len(seen) != 0 {
		t.Errorf("SNATed out of the uplink, the server still saw %v: the lab's per-interface source check is not working", seen)
	}
	out, err := l.topo.Fabric.Run(context.Background(), nil, "iptables-save", "-c", "-t", "filter")
	if err != nil {
		t.Fatal(err)
	}
	if !sourceCheckDropped(string(out)) {
		t.Errorf("the fabric's source check dropped nothing, so the packet was lost elsewhere:\n%s", out)
	}
}

// sourceCheckDropped reports whether one of the fabric's source-check rules counted a packet.
func sourceCheckDropped(save string) bool {
	for line := range strings.Lines(save) {
		if strings.Contains(line, netlab.SourceCheckComment) && !strings.HasPrefix(line, "[0:") {
			return true
		}
	}
	return false
}

// TestEgressLinkRepairs: an egress interface that went down, or lost its address, is repaired.
func TestEgressLinkRepairs(t *testing.T) { forProfiles(t, egressLinkProfiles, testEgressLinkRepairs) }

func testEgressLinkRepairs(t *testing.T, prof netlab.Profile) {
	l, eni, p := egressLinkLab(t, prof)
	v := l.applyWithEgressLink(eni, p)
	link, err := l.node(2).NS.NL.LinkByName(eni.Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.node(2).NS.NL.LinkSetDown(link); err != nil {
		t.Fatal(err)
	}
	if ch := l.applyNode("node2", v); ch.Link == 0 {
		t.Errorf("apply after the interface went down changed %+v, want the link repaired", ch)
	}
	l.expectSource(l.pod(1, 1).NS, "tcp", serverTCP, egressIP, "after the repair")
}

// TestEgressLinkMissing: a view naming an interface the node does not have fails the apply with the MAC.
func TestEgressLinkMissing(t *testing.T) {
	l, eni, p := egressLinkLab(t, netlab.Profile{})
	v := l.applyWithEgressLink(eni, p)
	v.EgressLink.MAC = append(v.EgressLink.MAC[:5:5], v.EgressLink.MAC[5]^0xff)
	v.Node = "node2"
	d, err := DesiredState(v, l.cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.dps["node2"].Apply(context.Background(), d)
	if err == nil || !strings.Contains(err.Error(), v.EgressLink.MAC.String()) {
		t.Errorf("Apply = %v, want an error naming the missing interface's MAC", err)
	}
}

func linkTX(t *testing.T, eni *netlab.ENI) uint64 {
	t.Helper()
	link, err := eni.Node.NS.NL.LinkByName(eni.Name)
	if err != nil {
		t.Fatal(err)
	}
	return link.Attrs().Statistics.TxPackets
}

// TestEgressIPMovesBetweenEgressInterfaces: the egress IP moves from node3's egress interface to
// node2's, as a one-call AWS move between two dedicated ENIs does, and traffic follows.
func TestEgressIPMovesBetweenEgressInterfaces(t *testing.T) {
	forProfiles(t, egressLinkProfiles, testEgressIPMovesBetweenEgressInterfaces)
}

func testEgressIPMovesBetweenEgressInterfaces(t *testing.T, prof netlab.Profile) {
	l := newLab(t, prof, 3, 1)
	ctx := context.Background()
	enis := map[string]*netlab.ENI{}
	for i, ip := range map[int]string{2: "10.0.0.52", 3: "10.0.0.53"} {
		eni, err := l.topo.AddENI(ctx, l.node(i), "eth1", netip.MustParseAddr(ip))
		if err != nil {
			t.Fatal(err)
		}
		enis[l.node(i).Name] = eni
	}
	applyEach := func(gateway string) {
		if err := l.topo.RouteToENI(egressIP, enis[gateway]); err != nil {
			t.Fatal(err)
		}
		for _, n := range l.topo.Nodes {
			v := l.view(movingPolicy(l, gateway))
			if eni := enis[n.Name]; eni != nil {
				v.EgressLink = &EgressLink{MAC: eni.MAC, Address: netip.PrefixFrom(eni.IP, 24), Router: netlab.RouterIP}
			}
			l.applyNode(n.Name, v)
		}
	}
	applyEach("node3")
	l.expectSource(l.pod(1, 1).NS, "tcp", serverTCP, egressIP, "before the move")
	applyEach("node2")
	for _, proto := range []string{"tcp", "udp"} {
		l.expectSource(l.pod(1, 1).NS, proto, serverTCP, egressIP, "after the move")
	}
	if save := dumps(t, l.node(3).NS)["iptables-save"]; strings.Contains(save, "--to-source "+egressIP.String()) {
		t.Errorf("node3 still SNATs to %s after the move:\n%s", egressIP, save)
	}
}
