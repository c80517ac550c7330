package manager_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/manager"
	"github.com/egressgw/egressgw/test/ec2sim"
)

// bigInterfaces lets one node hold all 50 IPs of the test.
func bigInterfaces(m *ec2sim.Model) {
	m.InstanceTypes = append(m.InstanceTypes, ec2sim.InstanceTypeSpec{Name: "m5.24xlarge", IPv4PerInterface: 64, MaxInterfaces: 15})
}

// TestFailoverOf50IPsThroughThrottlingAnd5xx fails a gateway that holds 50 IPs while EC2 throttles with
// its real bucket sizes and answers with server errors. Every IP must end on a healthy node, and while
// they wait, the gateway's conditions must say why.
func TestFailoverOf50IPsThroughThrottlingAnd5xx(t *testing.T) {
	nodes := []simNode{{"gw-1", 1, "m5.24xlarge"}, {"gw-2", 1, "m5.24xlarge"}, {"gw-3", 1, "m5.24xlarge"}}
	vpc := newSimVPC(t, nodes, ec2sim.Options{}, bigInterfaces)
	vpc.sim.UseAWSBuckets()
	c := newCluster(t, vpc.provider)
	c.addSimNodes(vpc)
	c.killAgent("gw-2") // so that all 50 IPs start on gw-1
	c.killAgent("gw-3")
	var ips []string
	for i := range 50 {
		ips = append(ips, fmt.Sprintf("10.0.1.%d", 100+i))
	}
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec(ips...)})
	c.startManager("m1", func(o *manager.RunOptions) { o.Config.CloudTimeout = 2 * time.Second })
	c.eventually("all 50 IPs on gw-1", func() (bool, string) {
		gw := c.gateway("gw")
		return gw.Status.AssignedIPCount == 50, fmt.Sprint(gw.Status.AssignedIPCount)
	})
	c.restartAgent("gw-2")
	c.restartAgent("gw-3")
	c.eventually("gw-2 and gw-3 healthy", func() (bool, string) {
		gw := c.gateway("gw")
		return gw.Status.HealthyNodeCount == 3, fmt.Sprint(gw.Status.Nodes)
	})

	// Enough throttling to outlast the 2s cloud timeout of a move, then server errors.
	vpc.sim.Throttle("AssignPrivateIpAddresses", 40)
	vpc.sim.InjectError("AssignPrivateIpAddresses", ec2sim.CodeUnavailable, 3)
	reasons := c.recordReadyReasons(t)
	c.killAgent("gw-1")
	start := time.Now()
	c.eventually("all 50 IPs off gw-1, on healthy nodes, in cloud and status", func() (bool, string) {
		gw := c.gateway("gw")
		for _, ip := range ips {
			a := assignment(gw, ip)
			if h := vpc.holder(ip); h == "gw-1" || h == "" || a.Node != h || a.State != egressgwv1.AssignmentAssigned {
				return false, fmt.Sprintf("%s: cloud %q, status %+v", ip, h, a)
			}
		}
		return meta.IsStatusConditionTrue(gw.Status.Conditions, egressgwv1.ConditionReady), ""
	})
	t.Logf("50 IPs moved through throttling and 5xx in %v; Ready reasons seen meanwhile: %v", time.Since(start).Round(time.Millisecond), reasons())
	if !reasons()["Throttled"] {
		t.Errorf("the conditions never said the moves wait for throttling: %v", reasons())
	}
}

// recordReadyReasons polls the gateway's Ready reason until the test ends and returns what it saw.
func (c *cluster) recordReadyReasons(t *testing.T) func() map[string]bool {
	var mu sync.Mutex
	seen := map[string]bool{}
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			gw := &egressgwv1.EgressGateway{}
			if err := c.env.Client.Get(t.Context(), clientKey("gw"), gw); err == nil {
				if cond := meta.FindStatusCondition(gw.Status.Conditions, egressgwv1.ConditionReady); cond != nil {
					mu.Lock()
					seen[cond.Reason] = true
					mu.Unlock()
				}
			}
		}
	}()
	return func() map[string]bool {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]bool{}
		for k := range seen {
			out[k] = true
		}
		return out
	}
}
