package nodeagent

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/egressgw/egressgw/test/netlab"
)

func serverAt(port uint16) netip.AddrPort { return netip.AddrPortFrom(netlab.ServerIP, port) }

// BenchmarkTunnelThroughput measures iperf3 TCP throughput in one lab, same run: pod → node1 → VXLAN →
// gateway node2 → SNAT → external, against pod → node1's own SNAT (masquerade) → external. It reports
// both rates and their ratio (target ≥ 0.85); the runs alternate to spread the machine's noise.
// Run it with -benchtime=1x: one iteration is four 5-second iperf3 runs.
func BenchmarkTunnelThroughput(b *testing.B) {
	l := newLab(b, 2, 2)
	ctx := context.Background()
	if err := l.topo.RouteToNode(egressIP, l.node(2)); err != nil {
		b.Fatal(err)
	}
	l.apply(l.view(PolicyView{Key: "perf/tunnel", Pods: podRefs(l.pod(1, 1)), EgressIP: egressIP, GatewayNode: "node2"}))
	l.expectSource(l.pod(1, 1).NS, "tcp", serverTCP, egressIP, "tunnelled pod")
	l.expectSource(l.pod(1, 2).NS, "tcp", serverTCP, l.node(1).IP, "direct pod")
	srv, err := l.topo.StartIperfServer(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Stop() })
	var tunnel, direct float64
	b.ResetTimer()
	for range b.N {
		for round := 0; round < 2; round++ {
			tunnel += iperf(b, l, 1, srv.Addr.Port())
			direct += iperf(b, l, 2, srv.Addr.Port())
		}
	}
	b.StopTimer()
	b.ReportMetric(tunnel/float64(2*b.N)/1e9, "tunnel-Gbit/s")
	b.ReportMetric(direct/float64(2*b.N)/1e9, "direct-Gbit/s")
	b.ReportMetric(tunnel/direct, "ratio")
	b.Logf("tunnel %.2f Gbit/s, direct SNAT %.2f Gbit/s, ratio %.3f (target >= 0.85)",
		tunnel/float64(2*b.N)/1e9, direct/float64(2*b.N)/1e9, tunnel/direct)
}

func iperf(b *testing.B, l *lab, podIndex int, port uint16) float64 {
	bps, err := l.pod(1, podIndex).NS.Iperf(context.Background(), serverAt(port), 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	return bps
}
