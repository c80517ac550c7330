package manager_test

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/manager"
)

// TestGoneNodesLeaveTheMetrics takes a node out of the gateways (its label removed) and deletes another
// Node: neither may keep a series of egressgw_gateway_node_eligible, whose label set would otherwise
// grow with every node that ever was a gateway.
func TestGoneNodesLeaveTheMetrics(t *testing.T) {
	cloud := fakeCloud([]int{1, 1, 1}, 10)
	c := newCluster(t, cloud)
	c.addGatewayNodes(3)
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec("10.0.1.50")})
	reg := prometheus.NewRegistry()
	c.startManager("m1", func(o *manager.RunOptions) { o.Registry = reg })
	c.eventually("a series per gateway node", func() (bool, string) {
		got := eligibleSeries(t, reg)
		return len(got) == 3, fmt.Sprint(got)
	})
	c.updateNode("gw-3", func(n *corev1.Node) { delete(n.Labels, "egressgw.io/gateway") })
	if err := c.env.Client.Delete(t.Context(), c.node("gw-2")); err != nil {
		t.Fatal(err)
	}
	c.eventually("the series of gw-2 and gw-3 gone", func() (bool, string) {
		got := eligibleSeries(t, reg)
		return fmt.Sprint(got) == "[gw-1]", fmt.Sprint(got)
	})
}

func eligibleSeries(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var nodes []string
	for _, f := range families {
		if f.GetName() != "egressgw_gateway_node_eligible" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "node" {
					nodes = append(nodes, l.GetValue())
				}
			}
		}
	}
	return nodes
}
