package manager_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/providers/fake"
)

func selecting(label string, ips ...string) egressgwv1.EgressGatewaySpec {
	spec := gatewaySpec(ips...)
	spec.NodeSelector = egressgwv1.LabelSelector{MatchLabels: map[string]egressgwv1.LabelValue{"role": egressgwv1.LabelValue(label)}}
	return spec
}

// TestBadSituationsAreReported sets up everything that cannot work at once and checks that each is
// reported where its owner looks: a condition naming the reason with a message to act on, and an Event.
func TestBadSituationsAreReported(t *testing.T) {
	cloud := fakeCloud([]int{1, 1}, 2) // one free address slot per node
	c := newCluster(t, cloud)
	gw := map[string]string{"role": "gw"}
	c.addNode("gw-1", 11, "aws:///zone-a/i-gw-1", gw)
	c.addNode("gw-2", 12, "aws:///zone-a/i-gw-2", gw)
	c.addNode("ghost", 13, "aws:///zone-a/i-ghost", map[string]string{"role": "ghost"})
	for name, team := range map[string]string{"payments": "payments", "other": "other"} {
		c.create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"team": team}}})
	}
	full := selecting("gw", "10.0.1.50", "10.0.1.51", "10.0.1.52")
	full.NamespaceSelector = egressgwv1.LabelSelector{MatchLabels: map[string]egressgwv1.LabelValue{"team": "payments"}}
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "full"}, Spec: full})
	time.Sleep(1100 * time.Millisecond) // creation timestamps have one-second resolution: "twin" must be younger
	for name, spec := range map[string]egressgwv1.EgressGatewaySpec{
		"nowhere": selecting("none", "10.0.1.60"),
		"ghosts":  selecting("ghost", "10.0.1.61"),
		"far":     selecting("gw", "10.0.9.50"),
		"twin":    selecting("gw", "10.0.1.50"),
	} {
		c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec})
	}
	for _, p := range []struct{ ns, name, gateway, pin string }{
		{"payments", "missing", "nope", ""},
		{"other", "outsider", "full", ""},
		{"payments", "bad-pin", "full", "10.0.1.99"},
	} {
		c.create(&egressgwv1.EgressPolicy{ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: p.ns},
			Spec: egressgwv1.EgressPolicySpec{GatewayName: p.gateway, EgressIP: p.pin}})
	}
	c.startManager("m1", nil)

	for _, tc := range []struct{ gateway, reason, fragment string }{
		{"nowhere", "NoGatewayNodes", "no node matches the nodeSelector of gateway nowhere"},
		{"ghosts", "NoEligibleNode", "1 InstanceNotFoundInCloud (ghost)"},
		{"far", "NoNodeInSubnet", "no eligible gateway node has a subnet that contains 10.0.9.50"},
		{"full", "CapacityExhausted", "no free IP address slot left"},
		{"twin", "IPConflict", "also an egress IP of gateway full"},
	} {
		c.eventually(tc.gateway+" reporting "+tc.reason, func() (bool, string) {
			cond := meta.FindStatusCondition(c.gateway(tc.gateway).Status.Conditions, egressgwv1.ConditionReady)
			ok := cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == tc.reason && strings.Contains(cond.Message, tc.fragment)
			return ok, fmt.Sprintf("%+v", cond)
		})
		if tc.reason != "IPConflict" { // a conflict is a spec error, reported in status only
			c.eventually("an Event on "+tc.gateway, func() (bool, string) {
				ev := c.events(c.gateway(tc.gateway))
				return hasEvent(ev, tc.reason), fmt.Sprint(ev)
			})
		}
	}
	if a := assignment(c.gateway("full"), "10.0.1.50"); a.State != egressgwv1.AssignmentAssigned {
		t.Errorf("the conflict took 10.0.1.50 from the older gateway: %+v", a)
	}
	for _, tc := range []struct{ ns, name, reason, fragment string }{
		{"payments", "missing", "GatewayNotFound", "EgressGateway nope does not exist"},
		{"other", "outsider", "NamespaceNotAdmitted", "does not admit namespace other"},
		{"payments", "bad-pin", "PinNotInGateway", "10.0.1.99 is not one of the gateway's egress IPs"},
	} {
		c.eventually(tc.name+" refused with "+tc.reason, func() (bool, string) {
			p := c.policy(tc.ns, tc.name)
			cond := meta.FindStatusCondition(p.Status.Conditions, egressgwv1.ConditionAccepted)
			ok := cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == tc.reason &&
				strings.Contains(cond.Message, tc.fragment) && hasEvent(c.events(p), tc.reason)
			return ok, fmt.Sprintf("%+v %v", cond, c.events(p))
		})
		if p := c.policy(tc.ns, tc.name); p.Status.EgressIP != "" {
			t.Errorf("refused policy %s got egress IP %s", tc.name, p.Status.EgressIP)
		}
	}
}

// TestGatewayDeletedWhileMoving deletes a gateway while the cloud call that places its IP is in
// flight: the gateway must stay until the IP is released, and the cloud must end with nothing.
func TestGatewayDeletedWhileMoving(t *testing.T) {
	cloud := fakeCloud([]int{1, 1}, 10)
	c := newCluster(t, cloud)
	c.addGatewayNodes(2)
	cloud.SetDelay(fake.Move, 2*time.Second)
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec("10.0.1.50")})
	c.startManager("m1", nil)
	c.eventually("the move to be in flight", func() (bool, string) {
		return assignment(c.gateway("gw"), "10.0.1.50").State == egressgwv1.AssignmentAssigning, ""
	})
	if err := c.env.Client.Delete(context.Background(), c.gateway("gw")); err != nil {
		t.Fatal(err)
	}
	c.eventually("the gateway gone and its IP released", func() (bool, string) {
		err := c.env.Client.Get(context.Background(), client.ObjectKey{Name: "gw"}, &egressgwv1.EgressGateway{})
		owner := ownerOf(cloud, "10.0.1.50")
		return apierrors.IsNotFound(err) && owner == "", fmt.Sprintf("get: %v, cloud owner %q", err, owner)
	})
	var moved, released bool
	for _, call := range cloud.Calls() {
		moved = moved || (call.Method == fake.Move && call.Err == nil)
		released = released || (call.Method == fake.Release && call.Err == nil && moved)
	}
	if !moved || !released {
		t.Errorf("want the move to finish and a release after it; calls: %+v", cloud.Calls())
	}
}
