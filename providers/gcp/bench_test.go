package gcp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/test/gcpsim"
)

// The failover of one egress IP on GCP: Release on the dead gateway, then Assign on the healthy one (no
// one-call move exists), through the real client against the simulator, with the provider's default poll
// interval. The figures are p50/p99 over failoverTrials moves, with zone operations that finish at once
// and with Compute Engine's usual 2-5s per NIC update.
//
//	go test -run '^$' -bench Failover -benchtime 1x ./providers/gcp/
const failoverTrials = 20

// The 10-ips cases move ten IPs between the same two gateways at once (ten concurrent Releases, then ten
// concurrent Assigns), which the provider coalesces into one operation per node and step.
func BenchmarkFailover(b *testing.B) {
	for _, c := range []struct {
		name   string
		ips    int
		lo, hi time.Duration
	}{{"op-latency-0", 1, 0, 0}, {"op-latency-2-5s", 1, 2 * time.Second, 5 * time.Second},
		{"10-ips/op-latency-0", 10, 0, 0}, {"10-ips/op-latency-2-5s", 10, 2 * time.Second, 5 * time.Second}} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				total, release, assign := failovers(b, c.ips, c.lo, c.hi)
				report(b, "total", total)
				report(b, "release", release)
				report(b, "assign", assign)
			}
		})
	}
}

// failovers moves n IPs (10.0.1.50, ...) back and forth between gw-a1 and gw-a2 and times each step.
func failovers(b *testing.B, n int, lo, hi time.Duration) (total, release, assign []time.Duration) {
	e := newEnv(b, gcpsim.Options{})
	// No client-side limit: 20 moves in a row would spend its burst of writes (50), which one failover
	// does not; the figures are the cloud path's.
	p := e.provider(b, Options{PollInterval: DefaultPollInterval, Backoff: DefaultBackoff, Limits: map[string]Limit{}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var ips []providers.Assignment
	for i := range n {
		ips = append(ips, providers.Assignment{IP: ip(fmt.Sprintf("10.0.1.%d", 50+i))})
	}
	nodes := []providers.Node{gwA1, gwA2}
	must(b, errors.Join(concurrently(ctx, p.Assign, gwA1, ips)...))
	for _, n := range nodes { // a manager keeps its gateways described
		if _, err := p.DescribeNode(ctx, n); err != nil {
			b.Fatal(err)
		}
	}
	e.sim.SetOperationLatencyRange(lo, hi)
	for i := range failoverTrials {
		from, to := nodes[i%2], nodes[(i+1)%2]
		start := time.Now()
		must(b, errors.Join(concurrently(ctx, p.Release, from, ips)...))
		released := time.Now()
		must(b, errors.Join(concurrently(ctx, p.Assign, to, ips)...))
		done := time.Now()
		for _, a := range ips {
			e.wantOn(b, a.IP.String(), to.Name)
		}
		total, release, assign = append(total, done.Sub(start)), append(release, released.Sub(start)), append(assign, done.Sub(released))
	}
	return total, release, assign
}

func report(b *testing.B, what string, d []time.Duration) {
	slices.Sort(d)
	p50, p99 := d[len(d)/2], d[min(len(d)-1, len(d)*99/100)]
	b.ReportMetric(float64(p50.Microseconds())/1000, what+"-p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, what+"-p99-ms")
	b.Logf("%s over %d moves: p50 %s, p99 %s", what, len(d), p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond))
}
