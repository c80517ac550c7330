package nodeagent

import (
	"context"
	"net/netip"
	"testing"

	"github.com/egressgw/egressgw/test/netlab"
)

// TestFailClosed: while a policy has no egress IP, its selected pods' packets toward its destinations
// reach no server at all and are counted; excluded destinations and unselected pods are untouched; once
// the IP is placed the same pods leave with it.
func TestFailClosed(t *testing.T) { forEachProfile(t, testFailClosed) }

func testFailClosed(t *testing.T, p netlab.Profile) {
	l := newLab(t, p, 2, 2)
	unplaced := PolicyView{
		Key: "payments/to-partner", Pods: podRefs(l.pod(1, 1)),
		DestinationCIDRs: []netip.Prefix{netlab.ExternalSubnet},
		ExcludedCIDRs:    []netip.Prefix{netip.PrefixFrom(netlab.AltServerIP, 32)},
	}
	l.apply(l.view(unplaced))
	if seen := sendUntilSeen(t, l, l.pod(1, 1).NS, "unplaced"); len(seen) != 0 {
		t.Errorf("selected pod of an unplaced policy: server saw %v, want nothing", seen)
	}
	if n := failClosedDrops(t, l.node(1)); n == 0 {
		t.Error("the fail-closed rule counted nothing")
	}
	l.expectOrdinary(l.pod(1, 1), "tcp", altServer, "selected pod to an excluded destination")
	l.expectOrdinary(l.pod(1, 2), "tcp", serverTCP, "unselected pod")

	if err := l.topo.RouteToNode(egressIP, l.node(2)); err != nil {
		t.Fatal(err)
	}
	placed := unplaced
	placed.EgressIP, placed.GatewayNode = egressIP, "node2"
	l.apply(l.view(placed))
	l.expectSource(l.pod(1, 1).NS, "tcp", serverTCP, egressIP, "once the IP is placed")

	open := unplaced
	open.FailOpen = true
	l.apply(l.view(open))
	l.expectOrdinary(l.pod(1, 1), "tcp", serverTCP, "a fail-open policy without an IP")
}

// TestNoLeakBeforeSourceReSteers: the IP moved from node3 to node2 and node3 already gave it up, but
// node1 still steers to node3. node3 must drop those packets rather than send them with its own address.
func TestNoLeakBeforeSourceReSteers(t *testing.T) { forEachProfile(t, testNoLeakBeforeSourceReSteers) }

func testNoLeakBeforeSourceReSteers(t *testing.T, p netlab.Profile) {
	l := newLab(t, p, 3, 1)
	if err := l.topo.RouteToNode(egressIP, l.node(3)); err != nil {
		t.Fatal(err)
	}
	l.apply(l.view(movingPolicy(l, "node3")))
	l.expectSource(l.pod(1, 1).NS, "udp", serverTCP, egressIP, "before the move")
	if err := l.topo.RouteToNode(egressIP, l.node(2)); err != nil {
		t.Fatal(err)
	}
	moved := l.view(movingPolicy(l, "node2"))
	l.applyNode("node2", moved)
	l.applyNode("node3", moved) // node1 has not heard of the move yet
	if seen := sendUntilSeen(t, l, l.pod(1, 1).NS, "stale-steering"); len(seen) != 0 {
		t.Errorf("packets steered to the old gateway: server saw %v, want them dropped there", seen)
	}
	if n := unmatchedTunnelDrops(t, l.node(3)); n == 0 {
		t.Error("the old gateway's drop rule counted nothing")
	}
	l.applyNode("node1", moved)
	l.expectSource(l.pod(1, 1).NS, "udp", serverTCP, egressIP, "once node1 re-steered")
}

// TestUpdateNoticesChangedUplink: after the uplink's MTU changes, the event path must not keep the old
// tunnel MTU (MSS clamping would then be wrong): it takes the full path and fixes the tunnel device.
func TestUpdateNoticesChangedUplink(t *testing.T) {
	l := newLab(t, netlab.Profile{}, 2, 1)
	if err := l.topo.RouteToNode(egressIP, l.node(2)); err != nil {
		t.Fatal(err)
	}
	v := l.view(movingPolicy(l, "node2"))
	l.apply(v)
	n1 := l.node(1).NS.NL
	up, err := n1.LinkByName(netlab.Uplink)
	if err != nil {
		t.Fatal(err)
	}
	if err := n1.LinkSetMTU(up, 1400); err != nil {
		t.Fatal(err)
	}
	l.update(v)
	tun, err := n1.LinkByName(l.cfg.Device)
	if err != nil {
		t.Fatal(err)
	}
	if got := tun.Attrs().MTU; got != 1350 {
		t.Errorf("tunnel MTU after the uplink went to 1400 and an Update: %d, want 1350", got)
	}
}

// TestFailClosedBesideAnotherOwnersAccept: another owner's ACCEPT first in filter FORWARD (a CNI that
// keeps its jumps on top and accepts its pods' traffic) must not let the traffic of a policy without an
// egress IP leave: egressgw's drop runs in its own base chain before the filter table, and a drop there
// is final.
func TestFailClosedBesideAnotherOwnersAccept(t *testing.T) {
	forEachProfile(t, func(t *testing.T, p netlab.Profile) {
		l := newLab(t, p, 2, 1)
		pod := l.pod(1, 1)
		l.apply(l.view(PolicyView{Key: "payments/to-partner", Pods: podRefs(pod)}))
		_, err := l.node(1).NS.Run(context.Background(), nil, "iptables", "-I", "FORWARD", "1", "-s", pod.IP.String()+"/32",
			"-m", "comment", "--comment", "another owner: accept pod traffic", "-j", "ACCEPT")
		if err != nil {
			t.Fatal(err)
		}
		if seen := sendUntilSeen(t, l, pod.NS, "accepted-by-another"); len(seen) != 0 {
			t.Errorf("selected pod of an unplaced policy beside another owner's ACCEPT: server saw %v, want nothing", seen)
		}
		if n := dropCounters(t, l.node(1))[DropFailClosed].ByPolicy["payments/to-partner"].Packets; n == 0 {
			t.Error("the fail-closed rule of payments/to-partner counted nothing")
		}
	})
}
