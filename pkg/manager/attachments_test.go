package manager_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/manager"
	"github.com/egressgw/egressgw/providers/aws"
	"github.com/egressgw/egressgw/test/ec2sim"
)

// egressENIs returns the dedicated interfaces the simulator has for the i-th node's instance.
func (v *simVPC) egressENIs(t testing.TB, i int) []types.NetworkInterface {
	t.Helper()
	c := ec2.NewFromConfig(simConfig, func(o *ec2.Options) {
		o.BaseEndpoint = sdkaws.String(v.url)
		o.HTTPClient = aws.HTTPClient(o.HTTPClient)
	})
	out, err := c.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{
		{Name: sdkaws.String("tag:" + aws.TagNode), Values: []string{instanceID(i)}}}})
	if err != nil {
		t.Fatal(err)
	}
	return out.NetworkInterfaces
}

// everyNodeHasOneInterface reports whether each node's instance has exactly one dedicated interface,
// attached to it.
func (v *simVPC) everyNodeHasOneInterface(t testing.TB) (bool, string) {
	var state []string
	ok := true
	for i := range v.nodes {
		enis := v.egressENIs(t, i)
		attached := len(enis) == 1 && enis[0].Attachment != nil && *enis[0].Attachment.InstanceId == instanceID(i)
		ok = ok && attached
		state = append(state, fmt.Sprintf("%s: %d interfaces (attached %v)", v.nodes[i].name, len(enis), attached))
	}
	return ok, strings.Join(state, "; ")
}

// TestGatewayInterfacesAreWarmAndSurviveARestart: every gateway candidate gets its dedicated interface
// before any IP needs it; a restarted manager (a new provider with empty caches) finds them by tag and
// creates none; a failover between two of them is one AssignPrivateIpAddresses call and no interface call.
func TestGatewayInterfacesAreWarmAndSurviveARestart(t *testing.T) {
	vpc := newSimVPC(t, []simNode{{"gw-1", 1, "m5.large"}, {"gw-2", 1, "m5.large"}, {"gw-3", 1, "m5.large"}}, ec2sim.Options{})
	c := newCluster(t, vpc.provider)
	c.addSimNodes(vpc)
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec("10.0.1.50")})
	stop, _ := c.startManager("m1", nil)
	<-c.moves
	c.eventually("an interface on every gateway node", func() (bool, string) { return vpc.everyNodeHasOneInterface(t) })
	stop()

	c.cloud = vpc.freshProvider(t)
	c.startManager("m2", nil)
	c.eventually("the new leader to see the IP placed", func() (bool, string) {
		a := assignment(c.gateway("gw"), "10.0.1.50")
		return a.State == egressgwv1.AssignmentAssigned && a.Node == vpc.holder("10.0.1.50"), fmt.Sprintf("%+v", a)
	})
	before := vpc.sim.Actions()
	from := vpc.holder("10.0.1.50")
	c.killAgent(from)
	rec := c.nextMove(t)
	if rec.Err != nil || vpc.holder("10.0.1.50") != rec.To || rec.To == from {
		t.Fatalf("failover %+v; the cloud has the IP on %s", rec, vpc.holder("10.0.1.50"))
	}
	after := vpc.sim.Actions()
	if d := after["AssignPrivateIpAddresses"] - before["AssignPrivateIpAddresses"]; d != 1 {
		t.Errorf("the failover made %d AssignPrivateIpAddresses calls, want 1", d)
	}
	if after["CreateNetworkInterface"] != 3 || after["AttachNetworkInterface"] != 3 {
		t.Errorf("want three interfaces created and attached in all (one per node, none after the restart), got %d and %d",
			after["CreateNetworkInterface"], after["AttachNetworkInterface"])
	}
	if ok, state := vpc.everyNodeHasOneInterface(t); !ok {
		t.Errorf("after the restart and the failover: %s", state)
	}
}

// TestInterfaceRemovedWhenTheNodeStopsBeingAGateway: the gateway label removed from the node that holds
// the IP moves the IP away, then the node's interface is detached and deleted (it would hold an interface
// slot and an address of the subnet for nothing); the label back gives it a new one. A deleted node whose
// instance is terminated leaves nothing behind either: EC2 deleted the interface with the instance.
func TestInterfaceRemovedWhenTheNodeStopsBeingAGateway(t *testing.T) {
	vpc := newSimVPC(t, []simNode{{"gw-1", 1, "m5.large"}, {"gw-2", 1, "m5.large"}, {"gw-3", 1, "m5.large"}}, ec2sim.Options{})
	vpc.sim.SetDetachDelay(500 * time.Millisecond) // the first delete comes too early and is retried
	c := newCluster(t, vpc.provider)
	c.addSimNodes(vpc)
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec("10.0.1.50")})
	c.startManager("m1", nil)
	<-c.moves
	c.eventually("an interface on every gateway node", func() (bool, string) { return vpc.everyNodeHasOneInterface(t) })
	from := vpc.holder("10.0.1.50")
	idx := map[string]int{"gw-1": 0, "gw-2": 1, "gw-3": 2}[from]
	c.updateNode(from, func(n *corev1.Node) { delete(n.Labels, "egressgw.io/gateway") })
	if rec := c.nextMove(t); rec.Err != nil || rec.From != from {
		t.Fatalf("move %+v, want it away from %s", rec, from)
	}
	c.eventually("the interface of "+from+" deleted", func() (bool, string) {
		enis := vpc.egressENIs(t, idx)
		return len(enis) == 0, fmt.Sprintf("%d interfaces", len(enis))
	})
	c.updateNode(from, func(n *corev1.Node) { n.Labels = gatewayLabels })
	c.eventually("a new interface once "+from+" is a gateway again", func() (bool, string) { return vpc.everyNodeHasOneInterface(t) })

	gone := vpc.holder("10.0.1.50")
	goneIdx := map[string]int{"gw-1": 0, "gw-2": 1, "gw-3": 2}[gone]
	if err := vpc.sim.TerminateInstance(instanceID(goneIdx)); err != nil {
		t.Fatal(err)
	}
	if err := c.env.Client.Delete(context.Background(), c.node(gone)); err != nil {
		t.Fatal(err)
	}
	rec := c.nextMove(t)
	if rec.Err != nil || vpc.holder("10.0.1.50") != rec.To {
		t.Fatalf("after the termination: move %+v, the IP is on %s", rec, vpc.holder("10.0.1.50"))
	}
	if enis := vpc.egressENIs(t, goneIdx); len(enis) != 0 {
		t.Fatalf("the terminated instance's interface outlived it: %+v", enis)
	}
}

// TestLeftoverInterfaceRemovedAfterARestart: a node stops being a gateway while no manager runs; the next
// leader finds its interface among the cluster's and removes it.
func TestLeftoverInterfaceRemovedAfterARestart(t *testing.T) {
	vpc := newSimVPC(t, []simNode{{"gw-1", 1, "m5.large"}, {"gw-2", 1, "m5.large"}}, ec2sim.Options{})
	c := newCluster(t, vpc.provider)
	c.addSimNodes(vpc)
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec("10.0.1.50")})
	stop, _ := c.startManager("m1", nil)
	<-c.moves
	c.eventually("an interface on every gateway node", func() (bool, string) { return vpc.everyNodeHasOneInterface(t) })
	stop()
	idle := map[string]string{"gw-1": "gw-2", "gw-2": "gw-1"}[vpc.holder("10.0.1.50")]
	c.updateNode(idle, func(n *corev1.Node) { delete(n.Labels, "egressgw.io/gateway") })
	c.cloud = vpc.freshProvider(t)
	c.startManager("m2", nil)
	idx := map[string]int{"gw-1": 0, "gw-2": 1}[idle]
	c.eventually("the interface of "+idle+" removed by the new leader", func() (bool, string) {
		enis := vpc.egressENIs(t, idx)
		return len(enis) == 0, fmt.Sprintf("%d interfaces", len(enis))
	})
	if got := vpc.holder("10.0.1.50"); got == idle || got == "" {
		t.Fatalf("the IP is on %q", got)
	}
}

// TestNodeWithoutRoomForAnInterfaceIsReported: a gateway node whose instance has all the interfaces its
// type allows gets no egress IP; an Event on the node and on the gateway says why, and placement names
// the reason.
func TestNodeWithoutRoomForAnInterfaceIsReported(t *testing.T) {
	full := func(m *ec2sim.Model) { // gw-1 is a t3.micro (two interfaces) that already has two
		m.Instances[0].Interfaces = append(m.Instances[0].Interfaces, ec2sim.InterfaceSpec{ID: "eni-0f0000000000000f1", Subnet: "subnet-00000000000000001", IPs: []string{"10.0.1.241"}})
	}
	vpc := newSimVPC(t, []simNode{{"gw-1", 1, "t3.micro"}}, ec2sim.Options{}, full)
	c := newCluster(t, vpc.provider)
	c.addSimNodes(vpc)
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec("10.0.1.50")})
	c.startManager("m1", nil)
	c.eventually("the IP unplaced, naming the reason", func() (bool, string) {
		a := assignment(c.gateway("gw"), "10.0.1.50")
		return a.State == egressgwv1.AssignmentUnplaced && strings.Contains(a.Message, manager.IneligibleNoEgressInterface), fmt.Sprintf("%+v", a)
	})
	c.eventually("Events on the node and the gateway", func() (bool, string) {
		node, gw := c.events(c.node("gw-1")), c.events(c.gateway("gw"))
		return hasEvent(node, manager.IneligibleNoEgressInterface, "t3.micro", "all 2 network interfaces") &&
			hasEvent(gw, manager.IneligibleNoEgressInterface, "gw-1"), fmt.Sprintf("node %v gateway %v", node, gw)
	})
	if vpc.holder("10.0.1.50") != "" || vpc.sim.Actions()["CreateNetworkInterface"] != 0 {
		t.Fatalf("nothing may be created or placed: %v", vpc.sim.Actions())
	}
}

// TestGatewayStatusPublishesTheEgressInterface: each gateway node's dedicated interface reaches its
// agent through status.nodes[].egressInterface, with the MAC, primary address and router the cloud has.
func TestGatewayStatusPublishesTheEgressInterface(t *testing.T) {
	vpc := newSimVPC(t, []simNode{{"gw-1", 1, "m5.large"}, {"gw-2", 1, "m5.large"}}, ec2sim.Options{})
	c := newCluster(t, vpc.provider)
	c.addSimNodes(vpc)
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec("10.0.1.50")})
	c.startManager("m1", nil)
	c.eventually("every gateway node's egress interface in status", func() (bool, string) {
		gw := c.gateway("gw")
		var got []string
		ok := len(gw.Status.Nodes) == len(vpc.nodes)
		for _, n := range gw.Status.Nodes {
			enis := vpc.egressENIs(t, slices.IndexFunc(vpc.nodes, func(s simNode) bool { return s.name == n.Name }))
			if len(enis) != 1 || n.EgressInterface == nil {
				ok = false
				got = append(got, fmt.Sprintf("%s: %d interfaces, status %+v", n.Name, len(enis), n.EgressInterface))
				continue
			}
			e := enis[0]
			want := egressgwv1.EgressInterface{MAC: *e.MacAddress, Address: *e.PrivateIpAddress + "/24", Router: "10.0.1.1"}
			ok = ok && *n.EgressInterface == want
			got = append(got, fmt.Sprintf("%s: %+v (want %+v)", n.Name, *n.EgressInterface, want))
		}
		return ok, strings.Join(got, "; ")
	})
}
