package manager_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/providers/fake"
)

// TestLongMessageBlocksNoOtherFailover gives one gateway 20 gateway nodes with EKS-style names that the
// cloud does not know: its NoEligibleNode message, listing every node, would pass the schema's 1 KiB cap
// on assignments[].message and fail its status write. That gateway's status must still be written, with
// the nodes summarized per cause, and the other gateway's IP must be placed and fail over.
func TestLongMessageBlocksNoOtherFailover(t *testing.T) {
	cloud := fakeCloud([]int{1, 1}, 10)
	c := newCluster(t, cloud)
	c.addNode("gw-1", 11, "aws:///zone-a/i-gw-1", map[string]string{"role": "gw"})
	c.addNode("gw-2", 12, "aws:///zone-a/i-gw-2", map[string]string{"role": "gw"})
	for i := range 20 {
		name := fmt.Sprintf("ip-10-0-1-%d.us-east-1.compute.internal", 100+i)
		c.addNode(name, 100+i, "aws:///zone-a/i-ghost"+fmt.Sprint(i), map[string]string{"role": "ghost"})
	}
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "ghosts"}, Spec: selecting("ghost", "10.0.1.61")})
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: selecting("gw", "10.0.1.50")})
	c.startManager("m1", nil)

	c.failOverGW(cloud)
	c.eventually("ghosts reporting NoEligibleNode with the nodes summarized", func() (bool, string) {
		gw := c.gateway("ghosts")
		a := assignment(gw, "10.0.1.61")
		cond := meta.FindStatusCondition(gw.Status.Conditions, egressgwv1.ConditionReady)
		ok := a.Reason == "NoEligibleNode" && len(a.Message) <= 1024 && cond != nil && cond.Reason == "NoEligibleNode" &&
			strings.Contains(a.Message, "20 InstanceNotFoundInCloud (ip-10-0-1-100.us-east-1.compute.internal, ") &&
			strings.Contains(a.Message, "and 17 more")
		return ok, fmt.Sprintf("%+v %+v", a, cond)
	})
}

// TestUnwritableGatewayBlocksNoOtherFailover makes the API server refuse every change of one gateway,
// its finalizer patch and its status writes (an admission policy, as a broken webhook or a quota would):
// the other gateway's IP must still be placed and fail over, and the refused gateway's IP must not move
// while its intent cannot be recorded.
func TestUnwritableGatewayBlocksNoOtherFailover(t *testing.T) {
	cloud := fakeCloud([]int{1, 1}, 10)
	c := newCluster(t, cloud)
	c.addGatewayNodes(2)
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "broken"}, Spec: gatewaySpec("10.0.1.60")})
	c.refuseUpdatesOf("broken")
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec("10.0.1.50")})
	c.startManager("m1", nil)

	c.failOverGW(cloud)
	if owner := ownerOf(cloud, "10.0.1.60"); owner != "" {
		t.Errorf("the IP of the gateway whose intent cannot be recorded was placed on %s", owner)
	}
}

// refuseUpdatesOf makes the API server refuse every update of the named gateway and of its status,
// through a ValidatingAdmissionPolicy, and waits until it does.
func (c *cluster) refuseUpdatesOf(name string) {
	c.t.Helper()
	ctx := context.Background()
	deny := admissionv1.Deny
	c.create(&admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "refuse-" + name},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionv1.RuleWithOperations{Operations: []admissionv1.OperationType{admissionv1.Update},
					Rule: admissionv1.Rule{APIGroups: []string{egressgwv1.GroupVersion.Group}, APIVersions: []string{"*"},
						Resources: []string{"egressgateways", "egressgateways/status"}}},
			}}},
			Validations: []admissionv1.Validation{{Expression: fmt.Sprintf("object.metadata.name != %q", name),
				Message: "this test refuses changes of gateway " + name}},
		},
	})
	c.create(&admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "refuse-" + name},
		Spec:       admissionv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: "refuse-" + name, ValidationActions: []admissionv1.ValidationAction{deny}},
	})
	c.eventually("the API server refusing changes of "+name, func() (bool, string) {
		gw := c.gateway(name)
		patched := gw.DeepCopy()
		patched.Labels = map[string]string{"probe": time.Now().Format("150405.000000")}
		err := c.env.Client.Patch(ctx, patched, client.MergeFrom(gw))
		return err != nil && strings.Contains(err.Error(), "refuses changes"), fmt.Sprint(err)
	})
}

// failOverGW waits for gateway gw's IP 10.0.1.50 to be placed, kills its holder's agent and waits for
// the IP on another node, in the cloud and in status.
func (c *cluster) failOverGW(cloud *fake.Provider) {
	c.t.Helper()
	c.eventually("gw's IP placed in the cloud", func() (bool, string) { return ownerOf(cloud, "10.0.1.50") != "", "" })
	from := strings.TrimPrefix(ownerOf(cloud, "10.0.1.50"), "aws:///zone-a/i-")
	c.killAgent(from)
	c.eventually("gw's IP failed over, in the cloud and in status", func() (bool, string) {
		owner := ownerOf(cloud, "10.0.1.50")
		a := assignment(c.gateway("gw"), "10.0.1.50")
		return owner != "" && owner == "aws:///zone-a/i-"+a.Node && a.Node != from && a.State == egressgwv1.AssignmentAssigned,
			fmt.Sprintf("cloud %s, status %+v", owner, a)
	})
}
