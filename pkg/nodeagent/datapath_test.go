package nodeagent

import (
	"context"
	"net/netip"
	"testing"

	"github.com/egressgw/egressgw/test/netlab"
)

// TestEgressThroughGateway runs real packets through three nodes: node3 holds the egress IP; the policy
// selects pod 1 of every node toward the external /24 except AltServerIP. The fabric drops a reply that
// node3 would send straight to node1 (its source is the server's address), so an answer proves the
// reply came back through the tunnel.
func TestEgressThroughGateway(t *testing.T) {
	forEachProfile(t, testEgressThroughGateway)
}

func testEgressThroughGateway(t *testing.T, p netlab.Profile) {
	l := newLab(t, p, 3, 2)
	if err := l.topo.RouteToNode(egressIP, l.node(3)); err != nil {
		t.Fatal(err)
	}
	l.apply(l.view(PolicyView{
		Key: "payments/to-partner", Pods: podRefs(l.pod(1, 1), l.pod(2, 1), l.pod(3, 1)),
		DestinationCIDRs: []netip.Prefix{netlab.ExternalSubnet},
		ExcludedCIDRs:    []netip.Prefix{netip.PrefixFrom(netlab.AltServerIP, 32)},
		EgressIP:         egressIP, GatewayNode: "node3",
	}))
	for _, proto := range []string{"tcp", "udp"} {
		l.expectSource(l.pod(1, 1).NS, proto, serverTCP, egressIP, "selected pod on node1 (through the tunnel)")
		l.expectSource(l.pod(2, 1).NS, proto, serverTCP, egressIP, "selected pod on node2 (through the tunnel)")
		l.expectSource(l.pod(3, 1).NS, proto, serverTCP, egressIP, "selected pod on the gateway node itself")
		l.expectOrdinary(l.pod(1, 1), proto, altServer, "selected pod to an excluded CIDR")
		l.expectOrdinary(l.pod(1, 2), proto, serverTCP, "unselected pod on node1")
		l.expectOrdinary(l.pod(3, 2), proto, serverTCP, "unselected pod on the gateway node")
		l.expectSource(l.node(1).NS, proto, serverTCP, l.node(1).IP, "node1 itself")
		l.expectSource(l.node(3).NS, proto, serverTCP, l.node(3).IP, "the gateway node itself")
	}
	t.Run("mtu", func(t *testing.T) { checkLargeTransfers(t, l) })
	for _, n := range l.topo.Nodes {
		if err := l.topo.Verify(context.Background(), n); err != nil {
			t.Errorf("the %s profile's state changed under egressgw: %v", p.Name(), err)
		}
	}
}

// checkLargeTransfers sends 1400-byte and 60000-byte payloads both ways through the tunnel and checks
// that the MSS was clamped to the tunnel MTU (1450 - 40) while the direct path keeps 1460. The server
// reports TCP_MAXSEG, which is the MSS less the 12 bytes of timestamp options.
func checkLargeTransfers(t *testing.T, l *lab) {
	ctx := context.Background()
	for _, size := range []int{1400, 60000} {
		r, err := l.pod(1, 1).NS.Ask(ctx, "tcp", serverTCP, "big", size)
		if err != nil {
			t.Fatalf("%d-byte payload through the tunnel: %v", size, err)
		}
		if r.Source.Addr() != egressIP || r.MSS > 1410 {
			t.Errorf("%d-byte payload: seen as %s with MSS %d, want %s and MSS <= 1410", size, r.Source, r.MSS, egressIP)
		}
	}
	r, err := l.pod(1, 2).NS.Ask(ctx, "tcp", serverTCP, "big", 1400)
	if err != nil || r.MSS <= 1410 {
		t.Errorf("direct path: MSS %d (err %v), want above 1410 (only tunnelled TCP is clamped)", r.MSS, err)
	}
}
