package netlab

import (
	"context"
	"net/netip"
	"os"
	"testing"

	"github.com/vishvananda/netlink"
)

// requireRoot skips tests that create namespaces when not root.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, veths and iptables rules (CI runs as root)")
	}
}

// TestTopologyEmulatesACNI proves the lab without any egressgw state: a pod reaches the external server
// through its node's masquerade (seen as the node IP), a node is seen with its own IP, and a fabric route
// for an address makes that address reach the node it names.
func TestTopologyEmulatesACNI(t *testing.T) {
	ctx := context.Background()
	topo, srv := startLab(t, Spec{Nodes: 2, PodsPerNode: 1})

	for _, n := range topo.Nodes {
		for _, proto := range []string{"tcp", "udp"} {
			got, err := n.Pods[0].NS.SourceOf(ctx, proto, srv.Addr, "pod-"+proto)
			if err != nil || got != n.IP {
				t.Errorf("%s pod %s over %s: seen as %v (err %v), want node IP %s", n.Name, n.Pods[0].IP, proto, got, err, n.IP)
			}
		}
		got, err := n.NS.SourceOf(ctx, "tcp", srv.Addr, "node")
		if err != nil || got != n.IP {
			t.Errorf("%s itself: seen as %v (err %v), want %s", n.Name, got, err, n.IP)
		}
	}
	seen, err := srv.Seen("pod-udp")
	if err != nil || len(seen) != 2 {
		t.Errorf("server log for pod-udp: %v (err %v), want 2 lines", seen, err)
	}
}

// TestFabricSourceCheck proves the emulated cloud source/destination check and RouteToNode: node2 may
// send from an extra address only while the fabric routes that address to node2.
func TestFabricSourceCheck(t *testing.T) {
	ctx := context.Background()
	topo, srv := startLab(t, Spec{Nodes: 2})
	extra := netip.MustParseAddr("10.0.0.100")
	n2 := topo.Nodes[1]
	err := n2.NS.RunLines(ctx, []string{"ip", "addr", "add", extra.String() + "/32", "dev", "lo"},
		[]string{"ip", "route", "replace", ServerIP.String(), "via", RouterIP.String(), "src", extra.String()})
	if err != nil {
		t.Fatal(err)
	}
	if err := topo.RouteToNode(extra, topo.Nodes[0]); err != nil {
		t.Fatal(err)
	}
	if got, err := n2.NS.SourceOf(ctx, "udp", srv.Addr, "not-yours"); err == nil {
		t.Errorf("node2 sent from an address routed to node1 and the server saw %s", got)
	}
	if err := topo.RouteToNode(extra, n2); err != nil {
		t.Fatal(err)
	}
	if got, err := n2.NS.SourceOf(ctx, "udp", srv.Addr, "yours"); err != nil || got != extra {
		t.Errorf("node2 holding %s: seen as %v (err %v)", extra, got, err)
	}
}

// startLab builds a topology with the echo server running, both removed at the end of the test.
func startLab(t *testing.T, spec Spec) (*Topology, *EchoServer) {
	requireRoot(t)
	ctx := context.Background()
	topo, err := Build(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := topo.Close(); err != nil {
			t.Error(err)
		}
	})
	dir := t.TempDir()
	bin, err := BuildEchoServer(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := topo.StartEchoServer(ctx, bin, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	return topo, srv
}

// TestDetour proves the benchmark's control paths: after Detour (or TunnelDetour), node1's traffic to
// AltServerIP crosses node2 in both directions (over its uplink, or inside the lab's tunnel) and keeps
// node1's address; its traffic to ServerIP does not need node2.
func TestDetour(t *testing.T) {
	for _, tc := range []struct {
		name   string
		detour func(*Topology, *Node, *Node, netip.Addr) error
		via    string // the device of node2 that every packet of the exchange crosses
	}{
		{"plain", (*Topology).Detour, Uplink},
		{"tunnel", (*Topology).TunnelDetour, labTunnelDevice},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			topo, _ := startLab(t, Spec{Nodes: 2})
			n1, n2 := topo.Nodes[0], topo.Nodes[1]
			if err := tc.detour(topo, n1, n2, AltServerIP); err != nil {
				t.Fatal(err)
			}
			before := linkPackets(t, n2, tc.via)
			got, err := n1.NS.SourceOf(ctx, "tcp", netip.AddrPortFrom(AltServerIP, EchoPort), "detoured")
			if err != nil || got != n1.IP {
				t.Fatalf("detoured request: seen as %v (err %v), want %s", got, err, n1.IP)
			}
			after := linkPackets(t, n2, tc.via)
			// A TCP exchange is at least handshake, request and teardown: three packets each way, and
			// node2 receives and sends every one of them on that device.
			if rx, tx := after.RxPackets-before.RxPackets, after.TxPackets-before.TxPackets; rx < 3 || tx < 3 {
				t.Errorf("node2's %s saw %d packets in and %d out for the detoured exchange, want at least 3 each", tc.via, rx, tx)
			}
			if err := n2.NS.Sysctl("net.ipv4.ip_forward=0"); err != nil {
				t.Fatal(err)
			}
			if got, err := n1.NS.SourceOf(ctx, "tcp", netip.AddrPortFrom(ServerIP, EchoPort), "direct"); err != nil || got != n1.IP {
				t.Errorf("request to ServerIP with node2 not forwarding: seen as %v (err %v), want %s", got, err, n1.IP)
			}
		})
	}
}

func linkPackets(t *testing.T, n *Node, dev string) netlink.LinkStatistics {
	t.Helper()
	link, err := n.NS.NL.LinkByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	return *link.Attrs().Statistics
}
