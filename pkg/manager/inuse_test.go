package manager_test

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/test/ec2sim"
)

// TestAPodsAddressIsReportedInUseAndLeftAlone: the gateway names 10.0.1.50, which the VPC CNI has given a
// pod on gw-1's primary interface. The provider locates it as in use (not on an egress interface), so the
// manager reports IPInUse and never takes it, although gw-1 is a gateway node of the cluster; 10.0.1.51
// is placed as usual.
func TestAPodsAddressIsReportedInUseAndLeftAlone(t *testing.T) {
	podAddress := func(m *ec2sim.Model) {
		nic := &m.Instances[0].Interfaces[0]
		nic.IPs = append(nic.IPs, "10.0.1.50")
	}
	vpc := newSimVPC(t, []simNode{{"gw-1", 1, "m5.large"}, {"gw-2", 1, "m5.large"}}, ec2sim.Options{}, podAddress)
	c := newCluster(t, vpc.provider)
	c.addSimNodes(vpc)
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec("10.0.1.50", "10.0.1.51")})
	c.startManager("m1", nil)
	c.eventuallyInUse("10.0.1.50", "not an egress interface", "10.0.1.51")
	if got := vpc.holder("10.0.1.50"); got != "gw-1" {
		t.Fatalf("the pod's address left gw-1's primary interface for %q", got)
	}
	if h, _ := vpc.sim.Where(addr("10.0.1.50")); h.Interface != "eni-00000000000000001" {
		t.Fatalf("the pod's address moved off the CNI's interface: %+v", h)
	}
}
