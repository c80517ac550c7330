package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/egressgw/egressgw/test/netlab"
)

// Each round runs every path once, for throughputRun; one benchmark iteration is throughputRounds
// rounds.
const (
	throughputRun    = 3 * time.Second
	throughputRounds = 9
)

// bareTunnelServer is a third address of the external host, reached through the lab's bare VXLAN tunnel.
var bareTunnelServer = netip.MustParseAddr("198.51.100.30")

// throughputPath is one way out of node1 that the benchmark measures.
type throughputPath struct {
	name   string
	pod    *netlab.Pod
	server netip.AddrPort
}

// pathNames are the paths in report order.
var pathNames = []string{"tunnel", "direct", "hop", "vxlan"}

// pathSample is one path's figures in one round: received Gbit/s; the machine's CPU-seconds per GB
// received, less the CPU time other work was using just before (an estimate); the share of the machine
// that was idle just before, and whether that was quiet enough (waitQuiet).
type pathSample struct {
	gbps, cpuPerGB, idle float64
	quiet                bool
}

// BenchmarkTunnelThroughput measures iperf3 TCP throughput (one stream) in one lab, same run, over four
// paths out of node1:
//
//   - tunnel: pod → node1 → egressgw0 → gateway node2 → SNAT → external;
//   - direct: pod → node1's own SNAT (the CNI masquerade) → external;
//   - hop:    like direct, but the fabric sends the flow through node2 and back, both directions
//     (plain forwarding): the tunnel's machines and crossings without a tunnel;
//   - vxlan:  like hop, with node1 → node2 inside a bare VXLAN tunnel of the lab's own (no egressgw
//     rule, mark or policy route).
//
// The figure is tunnel/direct (target ≥ 0.85). On one machine every node shares the same CPUs,
// so the tunnel path also pays for the gateway's work and a second pass through the fabric router,
// which a cluster runs on other machines. The controls split the gap: hop/direct is that extra machine
// on the path, vxlan/hop the kernel's VXLAN, tunnel/vxlan what egressgw's datapath adds. Rounds run
// every path once, in an order that rotates, each after waiting for the machine to be quiet (waitQuiet);
// client and server are pinned to different CPUs when there are two. It reports medians over the
// rounds and the range of the per-round tunnel/direct ratios. Run it with -benchtime=1x.
func BenchmarkTunnelThroughput(b *testing.B) {
	l := throughputLab(b)
	srv, err := l.topo.StartIperfServer(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Stop() })
	port := srv.Addr.Port()
	paths := []throughputPath{
		{"tunnel", l.pod(1, 1), srv.Addr},
		{"direct", l.pod(1, 2), srv.Addr},
		{"hop", l.pod(1, 2), netip.AddrPortFrom(netlab.AltServerIP, port)},
		{"vxlan", l.pod(1, 2), netip.AddrPortFrom(bareTunnelServer, port)},
	}
	for _, p := range paths { // first connections, ARP, path MTU, conntrack and caches: not measured
		p.run(b, time.Second, 0)
	}
	var rounds []map[string]pathSample
	var loads []float64
	b.ResetTimer()
	for range b.N {
		for r := range throughputRounds {
			loads = append(loads, loadAverage(b))
			round := map[string]pathSample{}
			for i := range paths {
				p := paths[(i+r)%len(paths)]
				round[p.name] = p.measure(b)
			}
			rounds = append(rounds, round)
			b.Logf("round %d: load %.2f; %s; tunnel/direct %.3f", len(rounds), loads[len(loads)-1], formatRound(round),
				round["tunnel"].gbps/round["direct"].gbps)
		}
	}
	b.StopTimer()
	reportThroughput(b, rounds, loads)
}

// throughputLab is two nodes with two pods each: pod 1 of node1 is steered to gateway node2, pod 2 is
// not, and reaches AltServerIP through node2 (Detour) and bareTunnelServer through the lab's tunnel
// to node2 (TunnelDetour).
func throughputLab(b *testing.B) *lab {
	l := newLab(b, netlab.Profile{}, 2, 2)
	t := l.topo
	err := errors.Join(t.RouteToNode(egressIP, l.node(2)), t.External.LinkUp(netlab.Uplink, netip.PrefixFrom(bareTunnelServer, 24)),
		t.Detour(l.node(1), l.node(2), netlab.AltServerIP), t.TunnelDetour(l.node(1), l.node(2), bareTunnelServer))
	if err != nil {
		b.Fatal(err)
	}
	l.apply(l.view(PolicyView{Key: "perf/tunnel", Pods: podRefs(l.pod(1, 1)), EgressIP: egressIP, GatewayNode: "node2"}))
	l.expectSource(l.pod(1, 1).NS, "tcp", serverTCP, egressIP, "tunnelled pod")
	l.expectSource(l.pod(1, 2).NS, "tcp", serverTCP, l.node(1).IP, "direct pod")
	l.expectSource(l.pod(1, 2).NS, "tcp", altServer, l.node(1).IP, "detoured pod")
	return l
}

// measure waits for the machine to be quiet, then runs the path for throughputRun.
func (p throughputPath) measure(b *testing.B) pathSample {
	b.Helper()
	idle, quiet := waitQuiet(b)
	s := p.run(b, throughputRun, (1-idle)*float64(runtime.NumCPU()))
	s.idle, s.quiet = idle, quiet
	return s
}

// run sends from the path's pod for d and returns what it measured; background is the CPU (in CPUs)
// that other work was using just before, subtracted from the cost.
func (p throughputPath) run(b *testing.B, d time.Duration, background float64) pathSample {
	b.Helper()
	run := netlab.IperfRun{Server: p.server, Duration: d}
	if n := runtime.NumCPU(); n >= 2 {
		run.Pin, run.ClientCPU, run.ServerCPU = true, 0, n-1
	}
	start, cpu := time.Now(), readCPUTimes(b)
	res, err := p.pod.NS.Iperf(context.Background(), run)
	if err != nil {
		b.Fatalf("%s: %v", p.name, err)
	}
	busy, _ := cpu.since(readCPUTimes(b))
	busy -= background * time.Since(start).Seconds()
	return pathSample{gbps: res.BitsPerSecond / 1e9, cpuPerGB: max(busy, 0) / (float64(res.Bytes) / 1e9)}
}

func formatRound(round map[string]pathSample) string {
	var parts []string
	for _, name := range pathNames {
		s := round[name]
		busy := ""
		if !s.quiet {
			busy = ", busy"
		}
		parts = append(parts, fmt.Sprintf("%s %.2f Gbit/s %.2f CPU-s/GB (idle before %.0f%%%s)", name, s.gbps, s.cpuPerGB, s.idle*100, busy))
	}
	return strings.Join(parts, ", ")
}

// reportThroughput reports the medians over the rounds, and the range of the tunnel/direct ratios.
func reportThroughput(b *testing.B, rounds []map[string]pathSample, loads []float64) {
	ratio := func(num, den string) []float64 {
		return collect(rounds, func(r map[string]pathSample) float64 { return r[num].gbps / r[den].gbps })
	}
	td := ratio("tunnel", "direct")
	for _, name := range pathNames {
		b.ReportMetric(median(collect(rounds, func(r map[string]pathSample) float64 { return r[name].gbps })), name+"-Gbit/s")
		b.ReportMetric(median(collect(rounds, func(r map[string]pathSample) float64 { return r[name].cpuPerGB })), name+"-CPU-s/GB")
	}
	b.ReportMetric(median(td), "median-ratio")
	b.ReportMetric(slices.Min(td), "min-ratio")
	b.ReportMetric(slices.Max(td), "max-ratio")
	parts := []string{fmt.Sprintf("tunnel/direct median %.3f (target >= 0.85), per round %.2f", median(td), slices.Sorted(slices.Values(td)))}
	for _, q := range [][2]string{{"hop", "direct"}, {"vxlan", "hop"}, {"tunnel", "vxlan"}} {
		m := median(ratio(q[0], q[1]))
		b.ReportMetric(m, q[0]+"/"+q[1])
		parts = append(parts, fmt.Sprintf("%s/%s %.3f", q[0], q[1], m))
	}
	b.Logf("%d rounds, load %.2f..%.2f: %s", len(rounds), slices.Min(loads), slices.Max(loads), strings.Join(parts, "; "))
}

func collect(rounds []map[string]pathSample, f func(map[string]pathSample) float64) []float64 {
	out := make([]float64, len(rounds))
	for i, r := range rounds {
		out[i] = f(r)
	}
	return out
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
