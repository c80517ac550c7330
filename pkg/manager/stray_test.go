package manager_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/manager"
	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/test/ec2sim"
)

// strayCloud is one cloud's simulator for the tests of an egress IP left on the VM of a deleted Node.
type strayCloud struct {
	ip string
	// provider is a fresh real provider for the simulator (empty caches, as a restarted manager has),
	// named for the manager replica it serves.
	provider func(t *testing.T, replica string) providers.Provider
	addNodes func(c *cluster)
	// holder names the node whose instance holds ip in the simulator, "" when none.
	holder func() string
	// check fails the test if ip was ever on two NICs at once.
	check func(t *testing.T)
}

func ec2Stray(t *testing.T) strayCloud {
	history := newIPHistory()
	vpc := newSimVPC(t, []simNode{{"gw-1", 1, "m5.large"}, {"gw-2", 1, "m5.large"}}, ec2sim.Options{OnChange: func(e ec2sim.Event) {
		if !e.Attached {
			history.record(e.IP, e.PrevInterface, e.Interface)
		}
	}})
	return strayCloud{ip: "10.0.1.50",
		provider: func(t *testing.T, _ string) providers.Provider { return vpc.freshProvider(t) },
		addNodes: func(c *cluster) { c.addSimNodes(vpc) },
		holder:   func() string { return vpc.holder("10.0.1.50") },
		check:    func(t *testing.T) { history.check(t, addr("10.0.1.50")) },
	}
}

func gcpStray(t *testing.T) strayCloud {
	g := newGCPProject(t)
	return strayCloud{ip: "10.0.1.50",
		provider: func(t *testing.T, replica string) providers.Provider { return g.provider(t, replica) },
		addNodes: func(c *cluster) { c.addGCPNodes(nil) },
		holder:   func() string { return g.holder("10.0.1.50") },
		check:    func(t *testing.T) { g.history.check(t, addr("10.0.1.50")) },
	}
}

func azureStray(t *testing.T) strayCloud {
	a := newAzureCloud(t)
	return strayCloud{ip: "10.224.0.50",
		provider: func(t *testing.T, _ string) providers.Provider { return a.freshProvider(t) },
		addNodes: func(c *cluster) { c.addAzureNodes() },
		holder:   func() string { return a.holder("10.224.0.50") },
		check:    func(t *testing.T) { a.history.check(t, addr("10.224.0.50")) },
	}
}

// TestIPOnADeletedNodesVMIsTakenBack deletes the Node object of the gateway holding an egress IP while
// its VM runs on and keeps the IP on egressgw's own NIC (an operator's kubectl delete node, an
// autoscaler that deletes the Node before the VM terminates). The provider locates the IP as egressgw's
// (Location.InUse empty) on an instance that is no node: the manager takes it back, by Move on EC2 and
// by Release on the instance, then Assign, on GCP and Azure, and the IP ends on a live gateway, in the
// simulator and in status, never on two NICs. Before, the new leader reported it IPInUse ("held by
// instance ..., which is not a node of this cluster") and the IP stayed on the VM outside the cluster.
func TestIPOnADeletedNodesVMIsTakenBack(t *testing.T) {
	clouds := []struct {
		name string
		new  func(t *testing.T) strayCloud
	}{{"ec2", ec2Stray}, {"gcp", gcpStray}, {"azure", azureStray}}
	for _, cl := range clouds {
		t.Run(cl.name+"/new-leader", func(t *testing.T) { testStrayIP(t, cl.new(t), true) })
	}
	t.Run("gcp/same-leader", func(t *testing.T) { testStrayIP(t, gcpStray(t), false) })
}

// testStrayIP places the IP with leader m1, deletes the holder's Node (with m1 stopped first when
// newLeader, so that m2 meets the IP on an instance it never knew as a node) and waits for the IP on a
// live gateway.
func testStrayIP(t *testing.T, s strayCloud, newLeader bool) {
	c := newCluster(t, s.provider(t, "m1"))
	s.addNodes(c)
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec(s.ip)})
	stop1, _ := c.startManager("m1", nil)
	c.eventually("the IP placed", func() (bool, string) { return s.holder() != "", "" })
	old := s.holder()
	if newLeader {
		stop1()
	}
	if err := c.env.Client.Delete(context.Background(), c.node(old)); err != nil {
		t.Fatal(err)
	}
	if newLeader {
		fresh := s.provider(t, "m2")
		c.startManager("m2", func(o *manager.RunOptions) { o.Provider = fresh })
	}
	c.eventually("the IP taken from the VM of deleted node "+old+" to a live gateway, in the cloud and in status", func() (bool, string) {
		a, h := assignment(c.gateway("gw"), s.ip), s.holder()
		return h != "" && h != old && a.Node == h && a.State == egressgwv1.AssignmentAssigned, fmt.Sprintf("cloud %q, status %+v", h, a)
	})
	s.check(t)
}

// TestAPodsAddressOutsideTheClusterStaysOnAzure: the gateway names 10.224.0.21, a pod's address of Azure
// CNI (ip configuration ipconfig2 of a VM that is no node of this cluster). Unlike an egress IP left on
// the VM of a deleted Node, it is not egressgw's: reported IPInUse, never taken; 10.224.0.50 is placed.
func TestAPodsAddressOutsideTheClusterStaysOnAzure(t *testing.T) {
	a := newAzureCloud(t)
	c := newCluster(t, a.provider)
	c.addAzureNodes()
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec("10.224.0.21", "10.224.0.50")})
	c.startManager("m1", nil)
	c.eventuallyInUse("10.224.0.21", "ipconfig2", "10.224.0.50")
	if got := a.holder("10.224.0.21"); !strings.HasSuffix(got, "aks-cni-12345678-vm0") {
		t.Fatalf("the pod's address left the CNI node's VM for %q", got)
	}
}

// eventuallyInUse waits until gateway gw reports inUse as IPInUse, its message naming why, and placed as
// Assigned.
func (c *cluster) eventuallyInUse(inUse, why, placed string) {
	c.eventually(inUse+" reported in use, "+placed+" placed", func() (bool, string) {
		gw := c.gateway("gw")
		a, b := assignment(gw, inUse), assignment(gw, placed)
		return a.Reason == "IPInUse" && strings.Contains(a.Message, why) && b.State == egressgwv1.AssignmentAssigned, fmt.Sprintf("%+v / %+v", a, b)
	})
}
