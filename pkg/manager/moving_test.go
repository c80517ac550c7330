package manager_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/manager"
	"github.com/egressgw/egressgw/providers/fake"
)

// TestPolicyFollowsAMove slows the cloud's moves to 3 s and kills the gateway holding an unpinned
// policy's egress IP while the gateway's other IP is assigned elsewhere: for the whole move the policy
// must keep its IP (not switch to the other one) and name the move's target as its gateway node, so
// that agents stay fail-closed and steer to the target the moment the IP lands.
func TestPolicyFollowsAMove(t *testing.T) {
	cloud := fakeCloud([]int{1, 1, 1}, 10)
	c := newCluster(t, cloud)
	c.addGatewayNodes(3)
	c.create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}})
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec("10.0.1.50", "10.0.1.51")})
	c.create(&egressgwv1.EgressPolicy{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "team"},
		Spec: egressgwv1.EgressPolicySpec{GatewayName: "gw"}})
	c.startManager("m1", nil)
	c.eventually("the policy ready", func() (bool, string) {
		p := c.policy("team", "p")
		return p.Status.GatewayNode != "" && c.gateway("gw").Status.AssignedIPCount == 2, fmt.Sprintf("%+v", p.Status)
	})
	p := c.policy("team", "p")
	ip, from := p.Status.EgressIP, p.Status.GatewayNode
	cloud.SetDelay(fake.Move, 3*time.Second)
	c.killAgent(from)

	c.eventually("the move under way", func() (bool, string) {
		a := assignment(c.gateway("gw"), ip)
		return a.State == egressgwv1.AssignmentAssigning, fmt.Sprintf("%+v", a)
	})
	target := assignment(c.gateway("gw"), ip).Node
	var seen []string
	for {
		a := assignment(c.gateway("gw"), ip)
		p := c.policy("team", "p")
		seen = append(seen, fmt.Sprintf("%s/%s", p.Status.EgressIP, p.Status.GatewayNode))
		if p.Status.EgressIP != ip || p.Status.GatewayNode != target {
			t.Fatalf("during the move of %s to %s the policy says %s on %q; seen %v", ip, target, p.Status.EgressIP, p.Status.GatewayNode, seen)
		}
		if a.State == egressgwv1.AssignmentAssigned {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if owner := ownerOf(cloud, ip); owner != "aws:///zone-a/i-"+target {
		t.Errorf("the cloud has %s on %s, want %s", ip, owner, target)
	}
}

// TestRemovedIPIsReleasedAcrossLeaders removes an IP from a gateway's spec while the cloud's release
// hangs, replaces the leader, and lets the release through: the IP must stay in the gateway's status
// (Releasing) until the new leader has released it in the cloud, and only then leave the status.
func TestRemovedIPIsReleasedAcrossLeaders(t *testing.T) {
	cloud := fakeCloud([]int{1, 1}, 10)
	c := newCluster(t, cloud)
	c.addGatewayNodes(2)
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec("10.0.1.50", "10.0.1.51")})
	// A graceful stop waits for the hung release until the cloud timeout.
	stop, _ := c.startManager("m1", func(o *manager.RunOptions) { o.Config.CloudTimeout = 2 * time.Second })
	c.eventually("both IPs placed", func() (bool, string) { return c.gateway("gw").Status.AssignedIPCount == 2, "" })
	holder := strings.TrimPrefix(ownerOf(cloud, "10.0.1.51"), "aws:///zone-a/i-")

	cloud.SetDelay(fake.Release, time.Hour)
	gw := c.gateway("gw")
	patched := gw.DeepCopy()
	patched.Spec.EgressIPs = patched.Spec.EgressIPs[:1]
	if err := c.env.Client.Patch(context.Background(), patched, client.MergeFrom(gw)); err != nil {
		t.Fatal(err)
	}
	c.eventually("the removed IP listed as Releasing", func() (bool, string) {
		a := assignment(c.gateway("gw"), "10.0.1.51")
		return a.State == egressgwv1.AssignmentReleasing && a.Node == holder, fmt.Sprintf("%+v", c.gateway("gw").Status.Assignments)
	})
	stop() // the release in flight is cancelled with the leader
	cloud.SetDelay(fake.Release, 0)
	if owner := ownerOf(cloud, "10.0.1.51"); owner == "" {
		t.Fatalf("the release went through before the leader stopped")
	}
	c.startManager("m2", nil)
	c.eventually("the new leader releasing the IP, and the status forgetting it", func() (bool, string) {
		owner := ownerOf(cloud, "10.0.1.51")
		a := assignment(c.gateway("gw"), "10.0.1.51")
		return owner == "" && a.IP == "", fmt.Sprintf("cloud %q, status %+v", owner, a)
	})
	if owner := ownerOf(cloud, "10.0.1.50"); owner == "" {
		t.Errorf("the IP still in the spec was released")
	}
}
