package manager_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/manager"
	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/providers/fake"
)

// TestFailoverWaitsNotBehindDescribes makes every read of a node's instance hang for 20 s once the IP is
// placed, with two cloud workers and a resync every second, so that background reads of the three
// gateway nodes occupy every worker: the failover must still run, before any of those reads finishes.
func TestFailoverWaitsNotBehindDescribes(t *testing.T) {
	cloud := fakeCloud([]int{1, 1, 1}, 10)
	c := newCluster(t, cloud)
	c.addGatewayNodes(3)
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec("10.0.1.50")})
	c.startManager("m1", func(o *manager.RunOptions) {
		o.Config.CloudConcurrency, o.Config.CloudResync, o.Config.CloudSettle = 2, time.Second, 0
	})
	<-c.moves
	cloud.SetDelay(fake.DescribeNode, 20*time.Second)
	t.Cleanup(func() { cloud.SetDelay(fake.DescribeNode, 0) })
	describes := count(cloud.Calls(), fake.DescribeNode)
	time.Sleep(2 * time.Second) // the resync queues the reads, which take both workers
	from := strings.TrimPrefix(ownerOf(cloud, "10.0.1.50"), "aws:///zone-a/i-")
	c.killAgent(from)
	rec := c.nextMove(t)
	if rec.Err != nil || rec.From != from {
		t.Fatalf("move %+v, want one away from %s", rec, from)
	}
	if n := count(cloud.Calls(), fake.DescribeNode) - describes; n > 0 {
		t.Errorf("the failover waited for %d background reads of the cloud to finish", n)
	}
}

// TestFailedMovesLocateOnlyTheirIPs fails the failover moves of a gateway with ten IPs several times: each
// failure may read again where its own IPs are, but must not read all IPs again (that full read is
// what every resync does, and repeated per failure it spends the account's shared Describe budget).
func TestFailedMovesLocateOnlyTheirIPs(t *testing.T) {
	cloud := fakeCloud([]int{1, 1, 1}, 20)
	c := newCluster(t, cloud)
	c.addGatewayNodes(3)
	var ips []string
	for i := range 10 {
		ips = append(ips, fmt.Sprintf("10.0.1.%d", 50+i))
	}
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec(ips...)})
	c.startManager("m1", nil)
	c.eventually("all IPs placed", func() (bool, string) { return c.gateway("gw").Status.AssignedIPCount == 10, "" })
	before := len(cloud.Calls())
	holder := strings.TrimPrefix(ownerOf(cloud, "10.0.1.50"), "aws:///zone-a/i-")
	cloud.FailNext(fake.Move, providers.ErrUnavailable, providers.ErrUnavailable, providers.ErrUnavailable, providers.ErrUnavailable)
	c.killAgent(holder)
	c.eventually("the IPs off the killed node", func() (bool, string) {
		gw := c.gateway("gw")
		for _, a := range gw.Status.Assignments {
			if a.Node == holder || a.State != egressgwv1.AssignmentAssigned {
				return false, fmt.Sprintf("%+v", a)
			}
		}
		return true, ""
	})
	failed, full := 0, 0
	for _, call := range cloud.Calls()[before:] {
		if call.Method == fake.Move && call.Err != nil {
			failed++
		}
		if call.Method == fake.Locate && len(call.IPs) == len(ips) {
			full++
		}
	}
	if failed < 4 || full > 0 {
		t.Errorf("%d failed moves, %d Locates of all IPs after them; want 4 and none", failed, full)
	}
}

func count(calls []fake.Call, m fake.Method) int {
	n := 0
	for _, call := range calls {
		if call.Method == m {
			n++
		}
	}
	return n
}
