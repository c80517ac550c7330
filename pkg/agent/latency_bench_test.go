package agent_test

import (
	"slices"
	"testing"
	"time"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/agent"
	"github.com/egressgw/egressgw/pkg/nodeagent"
)

// BenchmarkInformerPath measures, through the real API server and the informers, the time from a
// write to the API server until the kernel of the node that must act is programmed (the agent's sync
// that includes the change has returned):
//   - pod-label: a pod's label change selects or unselects it on its node, where another pod of the
//     policy is already steered (the common case: one ipset change);
//   - gateway-status: the policy's status names the other gateway (the gateway's assignment was moved
//     just before, and the source node failed closed meanwhile), and the source node re-steers.
//
// It reports p50 and p99 over b.N changes.
func BenchmarkInformerPath(b *testing.B) {
	c := newCluster(b, 3, 2)
	n1 := c.topo.Nodes[0]
	c.placedPolicy(c.topo.Nodes[1], false)
	c.setPodLabels(podName(n1, 0), map[string]string{"app": "pay"})
	c.startAll()
	ra := c.agents["node1"]
	steered, onNode3 := false, false // the state the last change left, across runs of the sub-benchmarks
	b.Run("pod-label", func(b *testing.B) {
		var lat []sample
		for range b.N {
			lbl := map[string]string{"app": "pay"}
			steered = !steered
			wantSteered := steered
			if !wantSteered {
				lbl["app"] = "web"
			}
			drain(ra.syncs)
			start := time.Now()
			c.setPodLabels(podName(n1, 1), lbl)
			lat = append(lat, waitSync(b, ra.syncs, start, func(d *nodeagent.Desired) bool {
				return slices.Contains(sourceSet(d), n1.Pods[1].IP.String()) == wantSteered
			}))
		}
		report(b, lat)
	})
	b.Run("gateway-status", func(b *testing.B) {
		var lat []sample
		for range b.N {
			onNode3 = !onNode3
			to := map[bool]string{true: "node3", false: "node2"}[onNode3]
			want := c.topo.Nodes[map[string]int{"node2": 1, "node3": 2}[to]].IP
			// The manager writes the gateway's assignment first; until the policy's status follows, the
			// source node fails closed (the two disagree). Wait for that, then time the policy's write.
			drain(ra.syncs)
			c.placeIP("gw", to, egressgwv1.AssignmentAssigned)
			waitSync(b, ra.syncs, time.Now(), func(d *nodeagent.Desired) bool { return len(d.Blocks) == 1 })
			drain(ra.syncs)
			start := time.Now()
			c.policyStatus("db", to)
			lat = append(lat, waitSync(b, ra.syncs, start, func(d *nodeagent.Desired) bool {
				return len(d.Gateways) == 1 && d.Gateways[0].IP == want
			}))
		}
		report(b, lat)
	})
}

// sourceSet is the members of the source set of the node's (single) steering rule.
func sourceSet(d *nodeagent.Desired) []string {
	for _, r := range d.Steers {
		for _, s := range d.Sets {
			if s.Name == r.Src {
				return s.Members
			}
		}
	}
	return nil
}

func drain(ch chan agent.SyncResult) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// sample is one change: total from the API write to programmed, and the sync's own share.
type sample struct{ total, sync time.Duration }

// waitSync returns the time from start until the first successful sync whose desired state satisfies ok.
func waitSync(b *testing.B, ch chan agent.SyncResult, start time.Time, ok func(*nodeagent.Desired) bool) sample {
	b.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case r := <-ch:
			if r.Err == nil && ok(r.Desired) {
				return sample{r.Done.Sub(start), r.Done.Sub(r.Started)}
			}
		case <-timeout:
			b.Fatal("no sync programmed the change within 30 s")
		}
	}
}

func report(b *testing.B, samples []sample) {
	var total, syncs []time.Duration
	for _, s := range samples {
		total, syncs = append(total, s.total), append(syncs, s.sync)
	}
	ms := func(ds []time.Duration, q int) float64 {
		slices.Sort(ds)
		return float64(ds[min(len(ds)*q/100, len(ds)-1)].Microseconds()) / 1000
	}
	b.ReportMetric(ms(total, 50), "p50-ms")
	b.ReportMetric(ms(total, 99), "p99-ms")
	b.ReportMetric(ms(syncs, 50), "sync-p50-ms")
	b.ReportMetric(ms(syncs, 99), "sync-p99-ms")
	b.ReportMetric(0, "ns/op")
	b.Logf("%d changes: write to programmed p50 %.2f ms, p99 %.2f ms; the agent's sync p50 %.2f ms, p99 %.2f ms",
		len(samples), ms(total, 50), ms(total, 99), ms(syncs, 50), ms(syncs, 99))
}
