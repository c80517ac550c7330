package azure

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/egressgw/egressgw/providers"
)

// failoverTrials is how many moves each case measures.
const failoverTrials = 20

// BenchmarkFailover moves one egress IP (with its public IP) between two gateways, Release on the old
// then Assign on the new, through the real SDK clients against the simulator, with the provider's
// default 1 s polling and the Network provider's Retry-After of 10 s on every answer about a running
// operation. It reports p50/p99 of the move, and of the part that is not the cloud's own operation time.
//
//	go test -run '^$' -bench Failover -benchtime 1x ./providers/azure/
func BenchmarkFailover(b *testing.B) {
	cases := []struct {
		name   string
		lo, hi time.Duration
	}{
		{"operation-latency-0", 0, 0},
		{"operation-latency-2-10s", 2 * time.Second, 10 * time.Second},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				moves, overhead := measureMoves(b, c.lo, c.hi)
				report(b, "move", moves)
				report(b, "not-cloud", overhead)
			}
		})
	}
}

func measureMoves(b *testing.B, lo, hi time.Duration) (moves, overhead []time.Duration) {
	e := newEnv(b, nil)
	opts := testOptions
	opts.PollInterval, opts.Backoff = 0, Backoff{} // the defaults: 1 s polls
	p := e.provider(b, opts)
	ctx := context.Background()
	a := providers.Assignment{IP: ip("10.224.0.50"), PublicIP: pip1}
	from, to := gw0, gw1
	if err := p.Assign(ctx, from, a); err != nil {
		b.Fatal(err)
	}
	if _, err := p.DescribeNode(ctx, to); err != nil { // a manager keeps its standby gateways described
		b.Fatal(err)
	}
	e.sim.SetOperationLatencyRange(lo, hi)
	for range failoverTrials {
		ops := len(e.sim.OperationLatencies())
		began := time.Now()
		if err := p.Release(ctx, from, a); err != nil {
			b.Fatal(err)
		}
		if err := p.Assign(ctx, to, a); err != nil {
			b.Fatal(err)
		}
		took := time.Since(began)
		var cloud time.Duration
		for _, d := range e.sim.OperationLatencies()[ops:] {
			cloud += d
		}
		moves, overhead = append(moves, took), append(overhead, took-cloud)
		from, to = to, from
	}
	return moves, overhead
}

func report(b *testing.B, name string, ds []time.Duration) {
	slices.Sort(ds)
	p50, p99 := ds[len(ds)/2], ds[min(len(ds)-1, len(ds)*99/100)]
	b.ReportMetric(p50.Seconds(), name+"-p50-s")
	b.ReportMetric(p99.Seconds(), name+"-p99-s")
	b.Logf("%s over %d trials: p50 %s, p99 %s", name, len(ds), p50.Round(time.Millisecond), p99.Round(time.Millisecond))
}

// BenchmarkSDKPollUntilDone is the comparison: one NIC write of 2 s waited for with the SDK's
// PollUntilDone at a Frequency of 1 s. The SDK obeys the Retry-After of 10 s instead, so the write is
// seen done after about 10 s, not 2.
//
//	go test -run '^$' -bench SDKPollUntilDone -benchtime 3x ./providers/azure/
func BenchmarkSDKPollUntilDone(b *testing.B) {
	e := newEnv(b, nil)
	p := e.provider(b, testOptions)
	ctx := context.Background()
	if _, err := p.DescribeNode(ctx, gw0); err != nil {
		b.Fatal(err)
	}
	e.sim.SetOperationLatency(2 * time.Second)
	b.ResetTimer()
	for range b.N {
		nic, err := p.nics.Get(ctx, testRG, gw0NIC, nil)
		if err != nil {
			b.Fatal(err)
		}
		poller, err := p.nics.BeginCreateOrUpdate(ctx, testRG, gw0NIC, nic.Interface, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: time.Second}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s-per-write")
}
