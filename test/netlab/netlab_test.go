package netlab

import (
	"context"
	"net/netip"
	"os"
	"testing"
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
