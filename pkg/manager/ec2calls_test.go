package manager_test

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/test/ec2sim"
)

// TestFailoverIsOneEC2Call: in the steady state (the IP placed, the manager's Locate behind it), a
// failover through the real AWS provider sends one AssignPrivateIpAddresses and no read: the provider
// knows from what it saw that the IP is on egressgw's own interface. With 100 ms per EC2 call it reports
// how long the move took.
func TestFailoverIsOneEC2Call(t *testing.T) {
	vpc := newSimVPC(t, []simNode{{"gw-1", 1, "m5.large"}, {"gw-2", 1, "m5.large"}, {"gw-3", 1, "m5.large"}}, ec2sim.Options{})
	c := newCluster(t, vpc.provider)
	c.addSimNodes(vpc)
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec("10.0.1.50")})
	c.startManager("m1", nil)
	<-c.moves
	c.eventually("status to settle", func() (bool, string) {
		return assignment(c.gateway("gw"), "10.0.1.50").State == egressgwv1.AssignmentAssigned, ""
	})
	time.Sleep(time.Second) // the reads of a new placement are behind
	vpc.sim.SetLatency(100 * time.Millisecond)
	before := vpc.sim.Actions()
	c.killAgent(vpc.holder("10.0.1.50"))
	rec := c.nextMove(t)
	if rec.Err != nil {
		t.Fatalf("the failover failed: %v", rec.Err)
	}
	after := vpc.sim.Actions()
	calls := map[string]int{}
	for action, n := range after {
		if d := n - before[action]; d > 0 {
			calls[action] = d
		}
	}
	t.Logf("EC2 calls of one failover: %v; the move took %v at 100 ms per call", calls, rec.Done.Sub(rec.Started).Round(time.Millisecond))
	if len(calls) != 1 || calls["AssignPrivateIpAddresses"] != 1 {
		t.Errorf("EC2 calls of one failover: %v, want one AssignPrivateIpAddresses", calls)
	}
	if got := vpc.holder("10.0.1.50"); got != rec.To {
		t.Errorf("the manager moved the IP to %s, the cloud has it on %s", rec.To, got)
	}
}
