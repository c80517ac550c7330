package manager_test

import (
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/test/ec2sim"
)

// TestRefusedIPBlocksNotItsBatch lists, with two good IPs, 10.0.1.2, which passes the schema but which
// EC2 reserves in subnet 10.0.1.0/24 (the VPC's DNS) and refuses every time. All three go to the one
// gateway node in one call, which EC2 refuses as a whole: the good IPs must still land on the node, and
// the refused one must be named in status and in an Event.
func TestRefusedIPBlocksNotItsBatch(t *testing.T) {
	vpc := newSimVPC(t, []simNode{{"gw-1", 1, "m5.large"}}, ec2sim.Options{})
	c := newCluster(t, vpc.provider)
	c.addSimNodes(vpc)
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec("10.0.1.50", "10.0.1.51", "10.0.1.2")})
	c.startManager("m1", nil)

	c.eventually("the good IPs on gw-1 in EC2 and in status, the reserved one named", func() (bool, string) {
		gw := c.gateway("gw")
		good, bad := assignment(gw, "10.0.1.50"), assignment(gw, "10.0.1.2")
		ok := vpc.holder("10.0.1.50") == "gw-1" && vpc.holder("10.0.1.51") == "gw-1" && vpc.holder("10.0.1.2") == "" &&
			good.State == egressgwv1.AssignmentAssigned && assignment(gw, "10.0.1.51").State == egressgwv1.AssignmentAssigned &&
			bad.State == egressgwv1.AssignmentPending && bad.Reason == "CloudRefused" && strings.Contains(bad.Message, "refuses 10.0.1.2 on its own")
		return ok, fmt.Sprintf("EC2: .50 on %q .51 on %q; status %+v", vpc.holder("10.0.1.50"), vpc.holder("10.0.1.51"), gw.Status.Assignments)
	})
	c.eventually("an Event naming the refused IP alone", func() (bool, string) {
		ev := c.events(c.gateway("gw"))
		return hasEvent(ev, "CloudRefused", "moving [10.0.1.2] to gw-1"), fmt.Sprint(ev)
	})
}
