package agent_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/test/netlab"
)

// TestAgentsProgramTheCluster runs one agent per netlab node against a real API server and walks a
// policy through its life; each step is checked by the address the external server sees and, where
// state must go, by the kernel's dumps.
func TestAgentsProgramTheCluster(t *testing.T) {
	c := newCluster(t, 3, 2)
	n1, n2, n3 := c.topo.Nodes[0], c.topo.Nodes[1], c.topo.Nodes[2]
	selected, unselected := n1.Pods[0], n1.Pods[1]
	c.createGateway("gw")
	c.placeIP("gw", "node2", egressgwv1.AssignmentAssigned)
	if err := c.topo.RouteToNode(egressIP, n2); err != nil {
		t.Fatal(err)
	}
	c.startAll()
	baseline := map[string]map[string]string{}
	for _, n := range c.topo.Nodes {
		baseline[n.Name] = dumps(t, n.NS)
	}

	c.createPolicy("db", "gw", nil)
	c.policyStatus("db", "node2")
	c.setPodLabels(podName(n1, 0), map[string]string{"app": "pay"})
	t.Run("selected pods leave with the egress IP, others with their node's", func(t *testing.T) {
		c.expectSource(selected, server, egressIP, "selected pod")
		c.expectSource(unselected, server, n1.IP, "unselected pod")
		if got := c.metric("node1", "egressgw_agent_selected_pods"); got != 1 {
			t.Errorf("node1 selected pods metric %v, want 1", got)
		}
		if got := c.metric("node2", "egressgw_agent_egress_ips_held"); got != 1 {
			t.Errorf("node2 egress IPs held %v, want 1", got)
		}
	})
	t.Run("a label change selects a pod", func(t *testing.T) {
		c.setPodLabels(podName(n1, 1), map[string]string{"app": "pay"})
		c.expectSource(unselected, server, egressIP, "newly labelled pod")
		c.setPodLabels(podName(n1, 1), map[string]string{"app": "web"})
		c.expectSource(unselected, server, n1.IP, "label removed again")
	})
	t.Run("a policy edit of the destinations", func(t *testing.T) {
		c.editPolicy("db", func(s *egressgwv1.EgressPolicySpec) {
			s.DestinationCIDRs = []string{netip.PrefixFrom(netlab.AltServerIP, 32).String()}
		})
		c.expectSource(selected, server, n1.IP, "destination no longer in the policy")
		c.expectSource(selected, altServer, egressIP, "the policy's only destination")
		c.editPolicy("db", func(s *egressgwv1.EgressPolicySpec) { s.DestinationCIDRs = nil })
		c.expectSource(selected, server, egressIP, "every destination again")
	})
	t.Run("the gateway's status moves the IP", func(t *testing.T) {
		c.placeIP("gw", "node3", egressgwv1.AssignmentAssigned)
		c.policyStatus("db", "node3")
		if err := c.topo.RouteToNode(egressIP, n3); err != nil {
			t.Fatal(err)
		}
		c.expectSource(selected, server, egressIP, "after the move")
		c.eventually("node2 to give up the IP", func() (bool, string) {
			save := dumps(t, n2.NS)["iptables-save"]
			return !strings.Contains(save, "--to-source "+egressIP.String()), save
		})
		if got := c.metric("node2", "egressgw_agent_egress_ips_held"); got != 0 {
			t.Errorf("node2 still holds %v egress IPs", got)
		}
	})
	t.Run("fail closed while the IP is unplaced", func(t *testing.T) { failClosed(t, c) })
	t.Run("deleting the policy leaves nothing", func(t *testing.T) {
		if err := c.env.Client.Delete(context.Background(), &egressgwv1.EgressPolicy{
			ObjectMeta: objectMeta(namespace, "db")}); err != nil {
			t.Fatal(err)
		}
		c.expectSource(selected, server, n1.IP, "after the policy is gone")
		for _, n := range c.topo.Nodes {
			c.eventually(n.Name+"'s kernel back to its state before the policy", func() (bool, string) {
				got := dumps(t, n.NS)
				for name, want := range baseline[n.Name] {
					if got[name] != want {
						return false, fmt.Sprintf("%s differs:\n--- before\n%s\n--- now\n%s", name, want, got[name])
					}
				}
				return true, ""
			})
		}
	})
}

// failClosed unplaces the IP: the selected pod's datagrams reach no server and the drop metric rises;
// once the IP is placed again they flow with the egress IP.
func failClosed(t *testing.T, c *cluster) {
	selected := c.topo.Nodes[0].Pods[0]
	c.placeIP("gw", "", egressgwv1.AssignmentUnplaced)
	c.policyStatus("db", "")
	c.eventually("node1 to drop fail-closed", func() (bool, string) {
		got := c.metric("node1", "egressgw_agent_fail_closed_policies")
		return got == 1, fmt.Sprintf("fail-closed policies %v", got)
	})
	before := c.metric("node1", `egressgw_agent_dropped_packets_total{reason="fail_closed"}`)
	const sent = 20
	for i := range sent {
		if err := selected.NS.SendUDP(context.Background(), server, fmt.Sprintf("closed-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second)
	seen := 0
	for i := range sent {
		s, err := c.srv.Seen(fmt.Sprintf("closed-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		seen += len(s)
	}
	if seen != 0 {
		t.Errorf("the server saw %d of %d datagrams sent while the IP was unplaced, want 0", seen, sent)
	}
	if after := c.metric("node1", `egressgw_agent_dropped_packets_total{reason="fail_closed"}`); after-before < sent {
		t.Errorf("fail-closed drop counter rose by %v, want at least %d", after-before, sent)
	}
	c.placeIP("gw", "node3", egressgwv1.AssignmentAssigned)
	c.policyStatus("db", "node3")
	c.expectSource(selected, server, egressIP, "once the IP is placed again")
}

// TestGatewayCandidateWatchesTheCluster: a node that is no gateway caches its own pods only; labelled as
// one, it starts watching every pod, so that when the IP is placed on it, it SNATs the pods of other
// nodes; unlabelled and without the IP, it stops.
func TestGatewayCandidateWatchesTheCluster(t *testing.T) {
	c := newCluster(t, 2, 1)
	n1, n2 := c.topo.Nodes[0], c.topo.Nodes[1]
	c.placedPolicy(n2, true)
	c.setPodLabels(podName(n2, 0), map[string]string{"app": "pay"})
	c.startAll()
	if got := c.metric("node1", "egressgw_agent_gateway_candidate"); got != 0 {
		t.Fatalf("node1 is a candidate before it is labelled (%v)", got)
	}
	c.setNodeLabels("node1", map[string]string{"egressgw.io/gateway": "true"})
	c.eventually("node1 to become a candidate", func() (bool, string) {
		got := c.metric("node1", "egressgw_agent_gateway_candidate")
		return got == 1, fmt.Sprint(got)
	})
	c.setNodeLabels("node2", nil) // the IP moves off node2 to node1
	c.placeIP("gw", "node1", egressgwv1.AssignmentAssigned)
	c.policyStatus("db", "node1")
	if err := c.topo.RouteToNode(egressIP, n1); err != nil {
		t.Fatal(err)
	}
	c.expectSource(n2.Pods[0], server, egressIP, "node2's pod through node1, which learnt it from the cluster-wide informer")
	c.setNodeLabels("node1", nil)
	c.placeIP("gw", "", egressgwv1.AssignmentUnplaced)
	c.eventually("node1 to stop being a candidate", func() (bool, string) {
		got := c.metric("node1", "egressgw_agent_gateway_candidate")
		return got == 0, fmt.Sprint(got)
	})
}
