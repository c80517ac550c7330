package manager_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/failover"
	"github.com/egressgw/egressgw/pkg/manager"
	"github.com/egressgw/egressgw/test/ec2sim"
)

// TestFailoverThroughEC2 kills the agent of the gateway that holds an egress IP, 20 times, and checks
// that the IP moves to another node of its subnet in the simulated EC2, and that status follows. It
// reports, from the moment of the kill, how long detection and the whole move took (p50, p99), with
// the default probe settings and no simulated cloud latency.
func TestFailoverThroughEC2(t *testing.T) {
	vpc := newSimVPC(t, []simNode{{"gw-1", 1, "m5.large"}, {"gw-2", 1, "m5.large"}, {"gw-3", 1, "m5.large"}, {"gw-4", 2, "m5.large"}}, ec2sim.Options{})
	c := newCluster(t, vpc.provider)
	c.addSimNodes(vpc)
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec("10.0.1.50")})
	c.startManager("m1", func(o *manager.RunOptions) { o.Config.Probe = failover.ProberConfig{} })
	c.eventually("the IP placed", func() (bool, string) { return vpc.holder("10.0.1.50") != "", "" })
	<-c.moves

	var detect, total []time.Duration
	for trial := range 20 {
		from := vpc.holder("10.0.1.50")
		killed := time.Now()
		c.killAgent(from)
		rec := c.nextMove(t)
		if rec.Err != nil || rec.To == from || rec.To == "gw-4" {
			t.Fatalf("trial %d: move %+v from %s; want a healthy node of subnet 1", trial, rec, from)
		}
		if got := vpc.holder("10.0.1.50"); got != rec.To {
			t.Fatalf("trial %d: the manager moved to %s, the cloud has it on %s", trial, rec.To, got)
		}
		detect = append(detect, rec.DetectedAt.Sub(killed))
		total = append(total, rec.Done.Sub(killed))
		c.eventually("status to follow the cloud", func() (bool, string) {
			a := assignment(c.gateway("gw"), "10.0.1.50")
			return a.Node == rec.To && a.State == egressgwv1.AssignmentAssigned, fmt.Sprintf("%+v", a)
		})
		c.restartAgent(from)
	}
	t.Logf("failover over %d trials, from the kill: detection p50 %v p99 %v; IP confirmed on the new node p50 %v p99 %v",
		len(total), percentile(detect, 50), percentile(detect, 99), percentile(total, 50), percentile(total, 99))
}

// TestOneLostProbeMovesNothing fails single probes of the gateway holding an IP and checks that the IP
// stays where it is while the manager keeps probing.
func TestOneLostProbeMovesNothing(t *testing.T) {
	vpc := newSimVPC(t, []simNode{{"gw-1", 1, "m5.large"}, {"gw-2", 1, "m5.large"}}, ec2sim.Options{})
	c := newCluster(t, vpc.provider)
	c.addSimNodes(vpc)
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec("10.0.1.50")})
	c.startManager("m1", nil)
	<-c.moves
	holder := vpc.holder("10.0.1.50")
	a := c.agent(holder)
	for range 5 {
		a.failNext.Store(2) // two in a row, one short of the threshold
		start := a.probes.Load()
		for a.probes.Load() < start+6 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	select {
	case rec := <-c.moves:
		t.Fatalf("lost probes moved the IP: %+v", rec)
	default:
	}
	if got := vpc.holder("10.0.1.50"); got != holder {
		t.Errorf("the IP left %s for %s", holder, got)
	}
}

func (c *cluster) nextMove(t *testing.T) manager.MoveRecord {
	t.Helper()
	select {
	case rec := <-c.moves:
		return rec
	case <-time.After(60 * time.Second):
		t.Fatal("no move within 60s")
	}
	return manager.MoveRecord{}
}

// restartAgent brings a killed agent back on the same address.
func (c *cluster) restartAgent(name string) {
	c.t.Helper()
	node := c.node(name)
	ip, _ := internalIPOf(node)
	var n int
	fmt.Sscanf(ip, "127.0.0.%d", &n)
	c.startAgent(name, n)
}

func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))].Round(time.Millisecond)
}
