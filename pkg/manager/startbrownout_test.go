package manager_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/manager"
	"github.com/egressgw/egressgw/test/ec2sim"
)

// TestReplicaStartedInAnOutageLeadsAfterIt: the leader loses its lease in a 20 s API-server outage
// (connections refused) and a replica starts 1 s into it, as a restarted pod would. The replica must wait
// for the API server, not exit (client-go gives up after ~10 s of retries, and a process that exits is
// restarted with a back-off that doubles to 5 minutes), and lead once it answers. It failed before the
// wait: "controller manager: failed to determine if *v1.Lease is namespaced ... EOF".
func TestReplicaStartedInAnOutageLeadsAfterIt(t *testing.T) {
	const ip = "10.0.1.50"
	vpc := newSimVPC(t, []simNode{{"gw-1", 1, "m5.large"}, {"gw-2", 1, "m5.large"}}, ec2sim.Options{})
	c := newCluster(t, vpc.provider)
	proxy := newAPIProxy(t, c.env.Config)
	c.apiConfig = proxy.config(c.env.Config)
	c.addSimNodes(vpc)
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec(ip)})
	noTuning := func(*manager.RunOptions) {}
	c.startManager("m1", noTuning)
	c.eventually("the IP placed", func() (bool, string) {
		a := assignment(c.gateway("gw"), ip)
		return a.State == egressgwv1.AssignmentAssigned, fmt.Sprintf("%+v", a)
	})
	first := c.leaseHolder()
	proxy.refuse()
	time.Sleep(time.Second)
	_, exited := c.startManager("m2", noTuning)
	time.Sleep(19 * time.Second)
	proxy.restore()
	restored := time.Now()
	for time.Since(restored) < time.Minute {
		select {
		case err := <-exited:
			t.Fatalf("the replica started in the outage exited: %v", err)
		default:
		}
		if h, renewed := c.lease(); renewed.After(restored) {
			t.Logf("a leader %v after the API server answered again (the new replica: %v)", time.Since(restored).Round(time.Millisecond), h != first)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no leader a minute after the outage; the lease names %q", c.leaseHolder())
}

// lease is who holds the managers' Lease and when it was last renewed.
func (c *cluster) lease() (string, time.Time) {
	var l coordinationv1.Lease
	if err := c.env.Client.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "egressgw-manager"}, &l); err != nil || l.Spec.HolderIdentity == nil || l.Spec.RenewTime == nil {
		return "", time.Time{}
	}
	return *l.Spec.HolderIdentity, l.Spec.RenewTime.Time
}
