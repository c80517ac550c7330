package nodeagent

import (
	"context"
	"os/exec"
	"testing"

	"github.com/egressgw/egressgw/test/netlab"
	"github.com/vishvananda/netlink"
)

// TestTunnelCarriesSuperPackets proves that a bulk TCP transfer crosses the tunnel as GSO super-packets:
// the gateway's egressgw0 receives, after decapsulation, packets many times the tunnel MTU, so the
// encapsulation, the fabric and the decapsulation each cost once per super-packet, not once per
// segment (the throughput figures of docs/datapath.md rest on that).
func TestTunnelCarriesSuperPackets(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("iperf3"); err != nil {
		t.Skip("needs iperf3 (make test installs it)")
	}
	l := newLab(t, netlab.Profile{}, 2, 1)
	if err := l.topo.RouteToNode(egressIP, l.node(2)); err != nil {
		t.Fatal(err)
	}
	l.apply(l.view(PolicyView{Key: "perf/gso", Pods: podRefs(l.pod(1, 1)), EgressIP: egressIP, GatewayNode: "node2"}))
	srv, err := l.topo.StartIperfServer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	before, mtu := tunnelStats(t, l.node(2))
	res, err := l.pod(1, 1).NS.Iperf(context.Background(), netlab.IperfRun{Server: srv.Addr, Bytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := tunnelStats(t, l.node(2))
	packets, bytes := after.RxPackets-before.RxPackets, after.RxBytes-before.RxBytes
	if bytes < uint64(res.Bytes) || packets == 0 {
		t.Fatalf("gateway's %s received %d bytes in %d packets for a %d-byte transfer", l.cfg.Device, bytes, packets, res.Bytes)
	}
	if avg := bytes / packets; avg < uint64(4*mtu) {
		t.Errorf("gateway's %s received %d packets of %d bytes on average; want super-packets (at least %d bytes)",
			l.cfg.Device, packets, avg, 4*mtu)
	}
}

// tunnelStats returns the counters and the MTU of node's tunnel device.
func tunnelStats(t *testing.T, n *netlab.Node) (*netlink.LinkStatistics, int) {
	t.Helper()
	link, err := n.NS.NL.LinkByName(DefaultConfig().Device)
	if err != nil {
		t.Fatal(err)
	}
	return link.Attrs().Statistics, link.Attrs().MTU
}
