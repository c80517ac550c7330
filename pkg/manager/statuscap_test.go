package manager_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/manager"
	"github.com/egressgw/egressgw/providers/fake"
)

// TestReleasingIPKeepsItsPlaceInAFullStatus: a gateway with the schema's maximum of 128 egress IPs
// swaps one for a new one while the cloud's release hangs. The status list holds 128 entries too, and
// it is the only record that tells a new leader that the removed IP is still to be released: the
// removed IP must stay listed (Releasing), the new one waits for room, and after a change of leader
// the removed IP is released in the cloud (not leaked) and the new one placed.
func TestReleasingIPKeepsItsPlaceInAFullStatus(t *testing.T) {
	cloud := fakeCloud([]int{1, 1}, 100)
	c := newCluster(t, cloud)
	c.addGatewayNodes(2)
	var ips []string
	for i := range 128 {
		ips = append(ips, fmt.Sprintf("10.0.1.%d", 50+i))
	}
	removed, added := ips[127], "10.0.1.200"
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec(ips...)})
	// A graceful stop waits for the hung release until the cloud timeout.
	stop, _ := c.startManager("m1", func(o *manager.RunOptions) { o.Config.CloudTimeout = 2 * time.Second })
	c.eventually("128 IPs placed", func() (bool, string) {
		n := c.gateway("gw").Status.AssignedIPCount
		return n == 128, fmt.Sprintf("%d assigned", n)
	})

	cloud.SetDelay(fake.Release, time.Hour)
	gw := c.gateway("gw")
	patched := gw.DeepCopy()
	patched.Spec.EgressIPs[127] = egressgwv1.EgressIP{IP: added}
	if err := c.env.Client.Patch(context.Background(), patched, client.MergeFrom(gw)); err != nil {
		t.Fatal(err)
	}
	c.eventually("the removed IP listed as Releasing", func() (bool, string) {
		gw := c.gateway("gw")
		a := assignment(gw, removed)
		return a.State == egressgwv1.AssignmentReleasing, fmt.Sprintf("%d entries, removed IP %+v, new IP %+v", len(gw.Status.Assignments), a, assignment(gw, added))
	})
	if owner := ownerOf(cloud, added); owner != "" {
		t.Errorf("the new IP was assigned (to %s) while the status had no room to record it", owner)
	}
	stop() // the release in flight is cancelled with the leader
	cloud.SetDelay(fake.Release, 0)
	if owner := ownerOf(cloud, removed); owner == "" {
		t.Fatalf("the release went through before the leader stopped")
	}

	c.startManager("m2", nil)
	c.eventually("the removed IP released and the new one assigned", func() (bool, string) {
		gw := c.gateway("gw")
		a := assignment(gw, added)
		return ownerOf(cloud, removed) == "" && a.State == egressgwv1.AssignmentAssigned && gw.Status.AssignedIPCount == 128,
			fmt.Sprintf("removed IP on %q, new IP %+v, %d assigned", ownerOf(cloud, removed), a, gw.Status.AssignedIPCount)
	})
	if n := len(c.gateway("gw").Status.Assignments); n != 128 {
		t.Errorf("status lists %d IPs, want the spec's 128", n)
	}
}
