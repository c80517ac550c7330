package manager_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/providers/fake"
)

// fakeCloud puts nodes gw-1..gw-n in the fake cloud, node i in subnet 10.0.<subnet[i]>.0/24, each with
// room for capacity addresses (its primary one included).
func fakeCloud(subnets []int, capacity int) *fake.Provider {
	cloud := fake.New()
	for i, s := range subnets {
		name := fmt.Sprintf("gw-%d", i+1)
		cloud.AddNode(providers.Node{Name: name, ProviderID: "aws:///zone-a/i-" + name}, providers.NodeInfo{
			Instance: "i-" + name, Interface: "eni-" + name, Zone: "zone-a", SubnetID: fmt.Sprintf("subnet-%d", s),
			Subnet: netip.MustParsePrefix(fmt.Sprintf("10.0.%d.0/24", s)), Capacity: capacity,
			Addresses: []netip.Addr{netip.MustParseAddr(fmt.Sprintf("10.0.%d.%d", s, 10+i))},
		})
	}
	return cloud
}

func (c *cluster) addGatewayNodes(n int) {
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("gw-%d", i)
		c.addNode(name, 10+i, "aws:///zone-a/i-"+name, gatewayLabels)
	}
}

func ownerOf(cloud *fake.Provider, ip string) string {
	id, _ := cloud.Owner(addr(ip))
	return id
}

// TestPlacesIPsAndAcceptsPolicies: a gateway's IPs land on healthy nodes of their subnet in the cloud
// and in status, and a policy of an admitted namespace is accepted with an IP and its node.
func TestPlacesIPsAndAcceptsPolicies(t *testing.T) {
	cloud := fakeCloud([]int{1, 1, 2}, 10)
	c := newCluster(t, cloud)
	c.addGatewayNodes(3)
	c.create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "payments", Labels: map[string]string{"team": "payments"}}})
	spec := gatewaySpec("10.0.1.50", "10.0.2.50")
	spec.NamespaceSelector = egressgwv1.LabelSelector{MatchLabels: map[string]egressgwv1.LabelValue{"team": "payments"}}
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "payments"}, Spec: spec})
	c.create(&egressgwv1.EgressPolicy{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "payments"},
		Spec: egressgwv1.EgressPolicySpec{GatewayName: "payments", EgressIP: "10.0.2.50"}})
	c.startManager("m1", nil)

	c.eventually("both IPs assigned in the cloud and in status", func() (bool, string) {
		gw := c.gateway("payments")
		ready := meta.IsStatusConditionTrue(gw.Status.Conditions, egressgwv1.ConditionReady)
		return ready && gw.Status.AssignedIPCount == 2, fmt.Sprintf("%+v", gw.Status)
	})
	gw := c.gateway("payments")
	for _, tc := range []struct{ ip, subnetNodes string }{{"10.0.1.50", "gw-1 gw-2"}, {"10.0.2.50", "gw-3"}} {
		a := assignment(gw, tc.ip)
		if owner := ownerOf(cloud, tc.ip); owner != "aws:///zone-a/i-"+a.Node {
			t.Errorf("%s: status says %s, the cloud says %s", tc.ip, a.Node, owner)
		}
		if !contains(tc.subnetNodes, a.Node) {
			t.Errorf("%s placed on %s, outside its subnet's nodes %s", tc.ip, a.Node, tc.subnetNodes)
		}
	}
	if gw.Status.HealthyNodeCount != 3 || gw.Status.EgressIPCount != 2 || len(gw.Status.Nodes) != 3 {
		t.Errorf("status counts: %+v", gw.Status)
	}
	c.eventually("policy accepted with its pinned IP", func() (bool, string) {
		p := c.policy("payments", "p")
		return meta.IsStatusConditionTrue(p.Status.Conditions, egressgwv1.ConditionReady) &&
			p.Status.EgressIP == "10.0.2.50" && p.Status.GatewayNode == "gw-3", fmt.Sprintf("%+v", p.Status)
	})
}

func contains(list, word string) bool {
	for _, w := range strings.Fields(list) {
		if w == word {
			return true
		}
	}
	return false
}
