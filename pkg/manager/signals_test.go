package manager_test

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
)

// TestNodeSignalsMoveIPs checks the signals other than the probes: a node cordoned for a drain, a node
// being deleted (graceful: the IP leaves before the node goes), a node whose Ready condition turns False,
// and a node that loses the gateway label. Each must move the IP to the other node, which is recorded
// in status with the reason.
func TestNodeSignalsMoveIPs(t *testing.T) {
	cloud := fakeCloud([]int{1, 1}, 10)
	c := newCluster(t, cloud)
	c.addGatewayNodes(2)
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec("10.0.1.50")})
	c.startManager("m1", nil)
	<-c.moves
	signals := []struct {
		name   string
		apply  func(*corev1.Node)
		undo   func(*corev1.Node)
		reason string
	}{
		{"cordon", func(n *corev1.Node) { n.Spec.Unschedulable = true }, func(n *corev1.Node) { n.Spec.Unschedulable = false }, "Cordoned"},
		{"not ready", func(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionFalse },
			func(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionTrue }, "NotReady"},
		{"label removed", func(n *corev1.Node) { delete(n.Labels, "egressgw.io/gateway") },
			func(n *corev1.Node) { n.Labels = gatewayLabels }, ""},
		{"deleting", func(n *corev1.Node) { n.Finalizers = append(n.Finalizers, "test.egressgw.io/keep") }, nil, "Deleting"},
	}
	for _, s := range signals {
		from := assignment(c.gateway("gw"), "10.0.1.50").Node
		c.updateNode(from, s.apply)
		if s.name == "deleting" {
			if err := c.env.Client.Delete(context.Background(), c.node(from)); err != nil {
				t.Fatal(err)
			}
		}
		rec := c.nextMove(t)
		if rec.Err != nil || rec.From != from || rec.To == from {
			t.Fatalf("%s: move %+v, want it away from %s", s.name, rec, from)
		}
		if owner := ownerOf(cloud, "10.0.1.50"); owner != "aws:///zone-a/i-"+rec.To {
			t.Fatalf("%s: the cloud has the IP on %s", s.name, owner)
		}
		if s.reason != "" {
			c.eventually(s.name+": status naming the cause", func() (bool, string) {
				gw := c.gateway("gw")
				for _, n := range gw.Status.Nodes {
					if n.Name == from {
						return !n.Healthy, fmt.Sprintf("%+v", n)
					}
				}
				return false, fmt.Sprintf("%+v", gw.Status.Nodes)
			})
			c.eventually(s.name+": an Event giving the cause", func() (bool, string) {
				ev := c.events(c.gateway("gw"))
				return hasEvent(ev, "Moved", "leaving "+from+" ("+s.reason+")"), fmt.Sprint(ev)
			})
		}
		if s.undo != nil {
			c.updateNode(from, s.undo)
		}
	}
}

// updateNode changes a Node, status included, as the kubelet or an operator would.
func (c *cluster) updateNode(name string, change func(*corev1.Node)) {
	c.t.Helper()
	n := c.node(name)
	change(n)
	if err := c.env.Client.Update(context.Background(), n); err != nil {
		c.t.Fatal(err)
	}
	change(n) // the answer to the spec update carries the old status
	if err := c.env.Client.Status().Update(context.Background(), n); err != nil {
		c.t.Fatal(err)
	}
}

// TestEveryMoveHasItsEvent fails a gateway node whose two IPs go to two other nodes in the same pass:
// both moves finish before the gateway's status changes, and each must still have its own Moved Event
// (the events API folds Events of one reason and action about one object version into a series that
// keeps the first note only).
func TestEveryMoveHasItsEvent(t *testing.T) {
	cloud := fakeCloud([]int{1, 1, 1, 1}, 10)
	c := newCluster(t, cloud)
	c.addNode("gw-1", 11, "aws:///zone-a/i-gw-1", gatewayLabels)
	c.addNode("gw-2", 12, "aws:///zone-a/i-gw-2", gatewayLabels)
	c.addNode("gw-3", 13, "aws:///zone-a/i-gw-3", nil)
	c.addNode("gw-4", 14, "aws:///zone-a/i-gw-4", nil)
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec("10.0.1.50", "10.0.1.51", "10.0.1.52", "10.0.1.53")})
	c.startManager("m1", nil)
	c.eventually("all IPs placed", func() (bool, string) { return c.gateway("gw").Status.AssignedIPCount == 4, "" })
	var leaving []string
	for _, a := range c.gateway("gw").Status.Assignments {
		if a.Node == "gw-1" {
			leaving = append(leaving, a.IP)
		}
	}
	for _, n := range []string{"gw-3", "gw-4"} {
		c.updateNode(n, func(n *corev1.Node) { n.Labels = gatewayLabels })
	}
	c.eventually("the new nodes healthy in status", func() (bool, string) {
		return c.gateway("gw").Status.HealthyNodeCount == 4, ""
	})
	c.killAgent("gw-1")
	c.eventually("a Moved Event for each IP that left gw-1", func() (bool, string) {
		ev := c.events(c.gateway("gw"))
		for _, ip := range leaving {
			if !hasEvent(ev, "Moved", "moved ["+ip+"]", "leaving gw-1") {
				return false, fmt.Sprint(ev)
			}
		}
		return true, ""
	})
}
