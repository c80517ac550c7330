package nodeagent

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/egressgw/egressgw/test/netlab"
)

func serverAt(port uint16) netip.AddrPort { return netip.AddrPortFrom(netlab.ServerIP, port) }

// BenchmarkTunnelThroughput measures iperf3 TCP throughput in one lab, same run: pod → node1 → VXLAN →
// gateway node2 → SNAT → external, against pod → node1's own SNAT (masquerade) → external. Each round
// runs the two back to back for 3 s; it reports the mean rates and the median of the per-round ratios
// (target ≥ 0.85), which resists the noise of a shared machine better than one long run. Run it with
// -benchtime=1x: one iteration is 5 rounds.
func BenchmarkTunnelThroughput(b *testing.B) {
	l := newLab(b, 2, 2)
	if err := l.topo.RouteToNode(egressIP, l.node(2)); err != nil {
		b.Fatal(err)
	}
	l.apply(l.view(PolicyView{Key: "perf/tunnel", Pods: podRefs(l.pod(1, 1)), EgressIP: egressIP, GatewayNode: "node2"}))
	l.expectSource(l.pod(1, 1).NS, "tcp", serverTCP, egressIP, "tunnelled pod")
	l.expectSource(l.pod(1, 2).NS, "tcp", serverTCP, l.node(1).IP, "direct pod")
	srv, err := l.topo.StartIperfServer(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Stop() })
	var tunnel, direct float64
	var ratios []float64
	b.ResetTimer()
	for range b.N {
		for range 5 {
			t, d := iperf(b, l, 1, srv.Addr.Port()), iperf(b, l, 2, srv.Addr.Port())
			tunnel, direct, ratios = tunnel+t, direct+d, append(ratios, t/d)
		}
	}
	b.StopTimer()
	slices.Sort(ratios)
	n := float64(len(ratios))
	b.ReportMetric(tunnel/n/1e9, "tunnel-Gbit/s")
	b.ReportMetric(direct/n/1e9, "direct-Gbit/s")
	b.ReportMetric(ratios[len(ratios)/2], "median-ratio")
	b.Logf("tunnel %.2f Gbit/s, direct SNAT %.2f Gbit/s (means); per-round ratios %.2f; median %.3f (target >= 0.85)",
		tunnel/n/1e9, direct/n/1e9, ratios, ratios[len(ratios)/2])
}

func iperf(b *testing.B, l *lab, podIndex int, port uint16) float64 {
	bps, err := l.pod(1, podIndex).NS.Iperf(context.Background(), serverAt(port), 3*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	return bps
}
