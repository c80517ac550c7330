package nodeagent

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/egressgw/egressgw/test/netlab"
)

func movingPolicy(l *lab, gateway string) PolicyView {
	return PolicyView{
		Key: "payments/moving", Pods: podRefs(l.pod(1, 1)),
		EgressIP: egressIP, GatewayNode: gateway,
	}
}

// TestEgressIPMoves moves the egress IP from node3 to node2 the way the manager and the cloud do (the
// fabric route follows, every node re-applies) and checks that new connections leave with the egress IP
// again, and that node3 keeps no SNAT rule and no conntrack entry for it.
func TestEgressIPMoves(t *testing.T) { forEachProfile(t, testEgressIPMoves) }

func testEgressIPMoves(t *testing.T, p netlab.Profile) {
	l := newLab(t, p, 3, 1)
	ctx := context.Background()
	if err := l.topo.RouteToNode(egressIP, l.node(3)); err != nil {
		t.Fatal(err)
	}
	l.apply(l.view(movingPolicy(l, "node3")))
	l.expectSource(l.pod(1, 1).NS, "udp", serverTCP, egressIP, "before the move")
	if !strings.Contains(conntrackDump(t, l.node(3)), "dst="+egressIP.String()) {
		t.Fatalf("node3 has no conntrack entry for %s before the move: the check below would prove nothing", egressIP)
	}

	if err := l.topo.RouteToNode(egressIP, l.node(2)); err != nil {
		t.Fatal(err)
	}
	changes := l.apply(l.view(movingPolicy(l, "node2")))
	for _, proto := range []string{"tcp", "udp"} {
		got, err := l.pod(1, 1).NS.SourceOf(ctx, proto, serverTCP, "after-move")
		if err != nil || got != egressIP {
			t.Errorf("after the move over %s: seen as %v (err %v), want %s", proto, got, err, egressIP)
		}
	}
	if changes["node3"].ConntrackEntries == 0 {
		t.Errorf("node3 reported no conntrack entries deleted for the released IP: %+v", changes["node3"])
	}
	if save := dumps(t, l.node(3).NS)["iptables-save"]; strings.Contains(save, "--to-source "+egressIP.String()) {
		t.Errorf("node3 still SNATs to %s after the move:\n%s", egressIP, save)
	}
	if ct := conntrackDump(t, l.node(3)); strings.Contains(ct, egressIP.String()) {
		t.Errorf("node3 still has conntrack entries naming %s:\n%s", egressIP, ct)
	}
}

func conntrackDump(t *testing.T, n *netlab.Node) string {
	t.Helper()
	out, err := n.NS.Run(context.Background(), nil, "conntrack", "-L")
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestEgressIPArrivesReady checks the arrival hook: a gateway programmed for an IP before the fabric
// delivers it has everything in place, so the first packet after the route flips leaves with the IP.
func TestEgressIPArrivesReady(t *testing.T) { forEachProfile(t, testEgressIPArrivesReady) }

func testEgressIPArrivesReady(t *testing.T, p netlab.Profile) {
	l := newLab(t, p, 2, 1)
	l.apply(l.view(movingPolicy(l, "node2")))
	// The cloud has not moved the IP yet: replies to it cannot arrive, the request must fail rather than
	// leave with another address.
	if got, err := l.pod(1, 1).NS.SourceOf(context.Background(), "tcp", serverTCP, "early"); err == nil {
		t.Fatalf("before the fabric routes %s, a request was answered as %s", egressIP, got)
	}
	if err := l.topo.RouteToNode(egressIP, l.node(2)); err != nil {
		t.Fatal(err)
	}
	l.expectSource(l.pod(1, 1).NS, "tcp", serverTCP, egressIP, "first connection after the IP arrived")
}

// TestSpoofedTunnelTraffic sends what must never leave with the egress IP: VXLAN from an address that is
// not a node, and a tunnelled packet from a real node whose inner source is not a selected pod.
func TestSpoofedTunnelTraffic(t *testing.T) { forEachProfile(t, testSpoofedTunnelTraffic) }

func testSpoofedTunnelTraffic(t *testing.T, p netlab.Profile) {
	l := newLab(t, p, 2, 2)
	ctx := context.Background()
	if err := l.topo.RouteToNode(egressIP, l.node(2)); err != nil {
		t.Fatal(err)
	}
	policy := movingPolicy(l, "node2")
	l.apply(l.view(policy))
	l.expectSource(l.pod(1, 1).NS, "udp", serverTCP, egressIP, "the selected pod (control)")

	t.Run("vxlan from a non-node address", func(t *testing.T) { spoofFromOutsider(t, l) })
	t.Run("unselected source through the tunnel", func(t *testing.T) {
		mark := hexMark(l.cfg.steerMark(steerIndex(t, l, "node1")), l.cfg.SteerMask)
		_, err := l.node(1).NS.Run(ctx, nil, "iptables", "-t", "mangle", "-I", "PREROUTING", "-s", l.pod(1, 2).IP.String(),
			"-m", "comment", "--comment", "test: force an unselected pod into the tunnel", "-j", "MARK", "--set-xmark", mark)
		if err != nil {
			t.Fatal(err)
		}
		if seen := sendUntilSeen(t, l, l.pod(1, 2).NS, "unselected-tunnelled"); len(seen) != 0 {
			t.Errorf("unselected pod's tunnelled packet: server saw %v, want it dropped at the gateway (neither the egress IP nor the gateway's own address)", seen)
		}
		if got := snatPackets(t, l.node(2)); got != 1 {
			t.Errorf("gateway SNAT rule counted %d packets, want only the control request's 1", got)
		}
		if got := unmatchedTunnelDrops(t, l.node(2)); got == 0 {
			t.Errorf("the gateway's drop rule for unmatched tunnelled packets counted nothing")
		}
	})
}

// spoofFromOutsider builds a VXLAN endpoint on a fabric host that is not a node and sends an inner
// packet whose source is the selected pod's IP.
func spoofFromOutsider(t *testing.T, l *lab) {
	ctx := context.Background()
	spoofer, err := l.topo.AttachHost(ctx, "spoof", netip.MustParseAddr("10.0.0.66"))
	if err != nil {
		t.Fatal(err)
	}
	gw := l.node(2).IP
	err = spoofer.RunLines(ctx,
		[]string{"ip", "link", "add", "vx", "type", "vxlan", "id", "6464", "dstport", "4866", "remote", gw.String(),
			"local", "10.0.0.66", "dev", netlab.Uplink, "nolearning"},
		[]string{"ip", "addr", "add", l.pod(1, 1).IP.String() + "/32", "dev", "vx"},
		[]string{"ip", "link", "set", "vx", "up"},
		[]string{"ip", "neigh", "add", gw.String(), "lladdr", tunnelMAC(gw).String(), "dev", "vx"},
		[]string{"ip", "route", "add", netlab.ServerIP.String() + "/32", "via", gw.String(), "dev", "vx", "onlink"},
	)
	if err != nil {
		t.Fatal(err)
	}
	if seen := sendUntilSeen(t, l, spoofer, "spoofed"); len(seen) != 0 {
		t.Errorf("spoofed VXLAN packet reached the server as %v", seen)
	}
	if n := inputDrops(t, l.node(2)); n == 0 {
		t.Errorf("the gateway's tunnel-port filter dropped nothing: the spoofed packet never arrived, so this test proved nothing")
	}
}

// TestPodChangesThroughUpdate drives the event path: a pod joins the policy and then leaves it through
// Update (netlink set and route changes, no kernel read). Traffic follows each change, and a full Apply
// afterwards finds nothing to repair, so the fast path left exactly the state a resync wants.
func TestPodChangesThroughUpdate(t *testing.T) { forEachProfile(t, testPodChangesThroughUpdate) }

func testPodChangesThroughUpdate(t *testing.T, p netlab.Profile) {
	l := newLab(t, p, 2, 2)
	if err := l.topo.RouteToNode(egressIP, l.node(2)); err != nil {
		t.Fatal(err)
	}
	policy := movingPolicy(l, "node2")
	l.apply(l.view(policy))
	l.expectOrdinary(l.pod(1, 2), "tcp", serverTCP, "pod 2 before it is selected")

	grown := policy
	grown.Pods = podRefs(l.pod(1, 1), l.pod(1, 2))
	l.update(l.view(grown))
	l.expectSource(l.pod(1, 2).NS, "tcp", serverTCP, egressIP, "pod 2 once selected")
	l.update(l.view(policy))
	l.expectOrdinary(l.pod(1, 2), "udp", serverTCP, "pod 2 after it left the policy")
	l.expectSource(l.pod(1, 1).NS, "tcp", serverTCP, egressIP, "pod 1 throughout")
	for name, ch := range l.apply(l.view(policy)) {
		if ch.Total() != 0 {
			t.Errorf("%s: resync after the updates changed %+v", name, ch)
		}
	}
}

// TestUpdateAfterChangeBehindItsBack: the event path diffs against what it last wrote; when the kernel
// changed behind its back (the set flushed), the delete of a member that is gone fails the transaction,
// and Update falls back to reading the kernel and applying in full.
func TestUpdateAfterChangeBehindItsBack(t *testing.T) {
	l := newLab(t, netlab.Profile{}, 2, 2)
	if err := l.topo.RouteToNode(egressIP, l.node(2)); err != nil {
		t.Fatal(err)
	}
	policy := movingPolicy(l, "node2")
	grown := policy
	grown.Pods = podRefs(l.pod(1, 1), l.pod(1, 2))
	l.apply(l.view(grown))
	if _, err := l.node(1).NS.Run(context.Background(), nil, "nft", "flush", "set", "ip", nftTableName, setName("s", policy.Key)); err != nil {
		t.Fatal(err)
	}
	l.update(l.view(policy)) // deletes pod 2, which the flush already removed
	l.expectSource(l.pod(1, 1).NS, "tcp", serverTCP, egressIP, "pod 1 after the fallback")
	l.expectOrdinary(l.pod(1, 2), "tcp", serverTCP, "pod 2 after it left the policy")
	if ch := l.applyNode("node1", l.view(policy)); ch.Total() != 0 {
		t.Errorf("resync after the fallback changed %+v", ch)
	}
}

// hexMark renders mark/mask the way iptables takes it.
func hexMark(mark, mask uint32) string { return fmt.Sprintf("%#x/%#x", mark, mask) }
