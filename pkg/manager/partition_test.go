package manager_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/manager"
	"github.com/egressgw/egressgw/providers/fake"
)

// kubelets renew every node's Lease in kube-node-lease every 300 ms, as kubelets do every 10 s, until
// stopped per node (a node that really died).
type kubelets struct {
	c       *cluster
	mu      sync.Mutex
	stopped map[string]bool
}

func (c *cluster) runKubelets(nodes ...string) *kubelets {
	k := &kubelets{c: c, stopped: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	for _, n := range nodes {
		c.create(&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: manager.NodeLeaseNamespace},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(n), LeaseDurationSeconds: ptr.To[int32](40),
				RenewTime: &metav1.MicroTime{Time: time.Now()}}})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			for _, n := range nodes {
				if !k.isStopped(n) {
					k.renew(ctx, n)
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(300 * time.Millisecond):
			}
		}
	}()
	c.t.Cleanup(func() { cancel(); <-done })
	return k
}

func (k *kubelets) renew(ctx context.Context, node string) {
	var l coordinationv1.Lease
	if err := k.c.env.Client.Get(ctx, client.ObjectKey{Namespace: manager.NodeLeaseNamespace, Name: node}, &l); err != nil {
		return
	}
	l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
	_ = k.c.env.Client.Update(ctx, &l)
}

func (k *kubelets) stop(node string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stopped[node] = true
}

func (k *kubelets) isStopped(node string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.stopped[node]
}

// placedOn returns each IP's node and state in the gateway's status.
func placedOn(gw *egressgwv1.EgressGateway) map[string]string {
	out := map[string]string{}
	for _, a := range gw.Status.Assignments {
		out[a.IP] = a.Node + " " + string(a.State)
	}
	return out
}

func (c *cluster) waitUnhealthy(gateway string, nodes ...string) {
	c.t.Helper()
	c.eventually(fmt.Sprintf("status showing %v unhealthy", nodes), func() (bool, string) {
		gw := c.gateway(gateway)
		unhealthy := 0
		for _, n := range gw.Status.Nodes {
			if !n.Healthy && strings.Contains(" "+strings.Join(nodes, " ")+" ", " "+n.Name+" ") {
				unhealthy++
			}
		}
		return unhealthy == len(nodes), fmt.Sprintf("%+v", gw.Status.Nodes)
	})
}

// holdsFor checks for a while that the status keeps every IP where it was, Assigned.
func (c *cluster) holdsFor(gateway string, want map[string]string, d time.Duration) {
	c.t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if got := placedOn(c.gateway(gateway)); fmt.Sprint(got) != fmt.Sprint(want) {
			c.t.Fatalf("the status changed to %v, want %v", got, want)
		}
	}
	select {
	case rec := <-c.moves:
		c.t.Fatalf("an IP moved: %+v", rec)
	default:
	}
}

// TestPartitionFromAllGatewaysUnplacesNothing cuts the manager off from every gateway's agent while the
// nodes stay Ready and keep renewing their Leases: no IP may move or be unplaced. A node whose Lease then
// stops (it really died) gives its IPs to the others.
func TestPartitionFromAllGatewaysUnplacesNothing(t *testing.T) {
	cloud, c, kubelets, before := leaseScene(t, []int{1, 1, 1, 1}, "10.0.1.50", "10.0.1.51", "10.0.1.52", "10.0.1.53")
	for _, n := range []string{"gw-1", "gw-2", "gw-3", "gw-4"} {
		c.killAgent(n)
	}
	c.waitUnhealthy("gw", "gw-1", "gw-2", "gw-3", "gw-4")
	c.holdsFor("gw", before, 3*time.Second)

	dead := strings.TrimPrefix(ownerOf(cloud, "10.0.1.50"), "aws:///zone-a/i-")
	kubelets.stop(dead)
	stopped := time.Now()
	defer func() {
		t.Logf("partitioned from all gateways: nothing moved; the IP left the node whose Lease stopped %v later (grace 3s)",
			time.Since(stopped).Round(100*time.Millisecond))
	}()
	c.eventually("the IP off the node whose Lease stopped", func() (bool, string) {
		a := assignment(c.gateway("gw"), "10.0.1.50")
		owner := ownerOf(cloud, "10.0.1.50")
		return a.State == egressgwv1.AssignmentAssigned && a.Node != dead && owner == "aws:///zone-a/i-"+a.Node,
			fmt.Sprintf("cloud %s, status %+v", owner, a)
	})
}

// TestPartitionFromHalfTheGateways cuts the manager off from the two gateways of subnet 10.0.2.0/24,
// which stay Ready with their Leases renewed: their IPs, which no node of the other subnet can take, must
// stay assigned where they are (naming why in status), and nothing else moves.
func TestPartitionFromHalfTheGateways(t *testing.T) {
	_, c, _, before := leaseScene(t, []int{1, 1, 2, 2}, "10.0.1.50", "10.0.1.51", "10.0.2.50", "10.0.2.51")
	c.killAgent("gw-3")
	c.killAgent("gw-4")
	c.waitUnhealthy("gw", "gw-3", "gw-4")
	c.holdsFor("gw", before, 3*time.Second)
	if a := assignment(c.gateway("gw"), "10.0.2.50"); a.Reason != "KeptOnUnconfirmedNode" {
		t.Errorf("status does not say why 10.0.2.50 stays: %+v", a)
	}
}

// leaseScene is four gateway nodes (in the given subnets) whose kubelets renew their Leases, a gateway
// with ips, and a manager trusting a Lease for 3 s, once every IP is placed; before is the placement.
func leaseScene(t *testing.T, subnets []int, ips ...string) (*fake.Provider, *cluster, *kubelets, map[string]string) {
	cloud := fakeCloud(subnets, 10)
	c := newCluster(t, cloud)
	c.addGatewayNodes(len(subnets))
	k := c.runKubelets("gw-1", "gw-2", "gw-3", "gw-4")
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec(ips...)})
	c.startManager("m1", func(o *manager.RunOptions) { o.Config.NodeLeaseGrace = 3 * time.Second })
	c.eventually("all IPs placed", func() (bool, string) { return int(c.gateway("gw").Status.AssignedIPCount) == len(ips), "" })
	for len(c.moves) > 0 {
		<-c.moves
	}
	return cloud, c, k, placedOn(c.gateway("gw"))
}
