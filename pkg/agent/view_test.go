package agent

import (
	"net/netip"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/nodeagent"
)

func testNode(name, ip string, podCIDRs ...string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:   corev1.NodeSpec{PodCIDRs: podCIDRs},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}}}
}

func testPod(ns, name, node, ip string, lbls map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls},
		Spec:   corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIPs: []corev1.PodIP{{IP: ip}}}}
}

func testGateway(name string, assignments ...egressgwv1.IPAssignment) *egressgwv1.EgressGateway {
	return &egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: egressgwv1.EgressGatewaySpec{
			NodeSelector: egressgwv1.LabelSelector{MatchLabels: map[string]egressgwv1.LabelValue{"egressgw.io/gateway": "true"}}},
		Status: egressgwv1.EgressGatewayStatus{Assignments: assignments}}
}

func testPolicy(ns, name, gateway, egressIP, node string, accepted bool) *egressgwv1.EgressPolicy {
	p := &egressgwv1.EgressPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: egressgwv1.EgressPolicySpec{GatewayName: gateway,
			PodSelector: &egressgwv1.LabelSelector{MatchLabels: map[string]egressgwv1.LabelValue{"app": "pay"}}},
		Status: egressgwv1.EgressPolicyStatus{EgressIP: egressIP, GatewayNode: node}}
	status := metav1.ConditionFalse
	if accepted {
		status = metav1.ConditionTrue
	}
	p.Status.Conditions = []metav1.Condition{{Type: egressgwv1.ConditionAccepted, Status: status, Reason: "Test"}}
	return p
}

func assigned(ip, node string, state egressgwv1.AssignmentState) egressgwv1.IPAssignment {
	return egressgwv1.IPAssignment{IP: ip, Node: node, State: state}
}

// podsByNamespace caches pods as the informer's transform does.
func podsByNamespace(pods ...*corev1.Pod) func(string) []*PodInfo {
	m := map[string][]*PodInfo{}
	for _, p := range pods {
		m[p.Namespace] = append(m[p.Namespace], newPodInfo(p))
	}
	return func(ns string) []*PodInfo { return m[ns] }
}

var (
	ip50  = netip.MustParseAddr("10.0.0.50")
	pay   = map[string]string{"app": "pay"}
	other = map[string]string{"app": "web"}
)

// TestBuildViewEgressIP: the policy gets its egress IP only when every source agrees it is in place.
func TestBuildViewEgressIP(t *testing.T) {
	pods := podsByNamespace(testPod("pay", "p1", "n1", "10.244.1.10", pay))
	cases := []struct {
		name     string
		policy   *egressgwv1.EgressPolicy
		gw       *egressgwv1.EgressGateway
		wantIP   netip.Addr
		wantNode string
		failOpen bool
	}{
		{"assigned on the named node", testPolicy("pay", "db", "gw", "10.0.0.50", "n2", true),
			testGateway("gw", assigned("10.0.0.50", "n2", egressgwv1.AssignmentAssigned)), ip50, "n2", false},
		{"not accepted", testPolicy("pay", "db", "gw", "10.0.0.50", "n2", false),
			testGateway("gw", assigned("10.0.0.50", "n2", egressgwv1.AssignmentAssigned)), netip.Addr{}, "", false},
		{"still assigning", testPolicy("pay", "db", "gw", "10.0.0.50", "n2", true),
			testGateway("gw", assigned("10.0.0.50", "n2", egressgwv1.AssignmentAssigning)), netip.Addr{}, "", false},
		{"releasing", testPolicy("pay", "db", "gw", "10.0.0.50", "n2", true),
			testGateway("gw", assigned("10.0.0.50", "n2", egressgwv1.AssignmentReleasing)), netip.Addr{}, "", false},
		{"unplaced", testPolicy("pay", "db", "gw", "10.0.0.50", "", true),
			testGateway("gw", assigned("10.0.0.50", "", egressgwv1.AssignmentUnplaced)), netip.Addr{}, "", false},
		{"gateway status names another node", testPolicy("pay", "db", "gw", "10.0.0.50", "n2", true),
			testGateway("gw", assigned("10.0.0.50", "n3", egressgwv1.AssignmentAssigned)), netip.Addr{}, "", false},
		{"IP missing from the gateway's assignments", testPolicy("pay", "db", "gw", "10.0.0.50", "n2", true),
			testGateway("gw"), netip.Addr{}, "", false},
		{"gateway missing", testPolicy("pay", "db", "gone", "10.0.0.50", "n2", true),
			testGateway("gw", assigned("10.0.0.50", "n2", egressgwv1.AssignmentAssigned)), netip.Addr{}, "", false},
		{"no IP in the policy status", testPolicy("pay", "db", "gw", "", "", true),
			testGateway("gw", assigned("10.0.0.50", "n2", egressgwv1.AssignmentAssigned)), netip.Addr{}, "", false},
		{"fail open when asked", withUnavailable(testPolicy("pay", "db", "gw", "", "", true), egressgwv1.UnavailableUseNodeIP),
			testGateway("gw"), netip.Addr{}, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, _ := BuildView(Inputs{Node: "n1", Nodes: []*corev1.Node{testNode("n1", "10.0.0.11"), testNode("n2", "10.0.0.12")},
				Policies: []*egressgwv1.EgressPolicy{tc.policy}, Gateways: []*egressgwv1.EgressGateway{tc.gw}, PodsIn: pods})
			if len(v.Policies) != 1 {
				t.Fatalf("policies %+v", v.Policies)
			}
			p := v.Policies[0]
			if p.EgressIP != tc.wantIP || p.GatewayNode != tc.wantNode || p.FailOpen != tc.failOpen {
				t.Errorf("egress IP %v on %q (fail open %v), want %v on %q (%v)", p.EgressIP, p.GatewayNode, p.FailOpen, tc.wantIP, tc.wantNode, tc.failOpen)
			}
			if len(p.Pods) != 1 {
				t.Errorf("selected pods %v: the selection must not depend on the egress IP (fail closed needs them)", p.Pods)
			}
		})
	}
}

func withUnavailable(p *egressgwv1.EgressPolicy, a egressgwv1.UnavailableAction) *egressgwv1.EgressPolicy {
	p.Spec.WhenUnavailable = a
	return p
}

// TestBuildViewSelection: which pods a policy selects.
func TestBuildViewSelection(t *testing.T) {
	now := metav1.Now()
	hostNet := testPod("pay", "host", "n1", "10.0.0.11", pay)
	hostNet.Spec.HostNetwork = true
	done := testPod("pay", "done", "n1", "10.244.1.13", pay)
	done.Status.Phase = corev1.PodSucceeded
	failed := testPod("pay", "failed", "n1", "10.244.1.14", pay)
	failed.Status.Phase = corev1.PodFailed
	terminating := testPod("pay", "terminating", "n1", "10.244.1.15", pay)
	terminating.DeletionTimestamp = &now
	pending := testPod("pay", "init", "n2", "10.244.2.16", pay) // init containers run while Pending
	pending.Status.Phase = corev1.PodPending
	noIP := testPod("pay", "noip", "n1", "", pay)
	v6 := testPod("pay", "v6", "n1", "fd00::1", pay)
	dual := testPod("pay", "dual", "n1", "10.244.1.17", pay)
	dual.Status.PodIPs = append(dual.Status.PodIPs, corev1.PodIP{IP: "fd00::2"})
	legacy := testPod("pay", "legacy", "n1", "", pay)
	legacy.Status.PodIPs, legacy.Status.PodIP = nil, "10.244.1.18"
	unscheduled := testPod("pay", "unscheduled", "", "10.244.1.19", pay)
	pods := podsByNamespace(
		testPod("pay", "a", "n1", "10.244.1.10", pay),
		testPod("pay", "b", "n1", "10.244.1.11", other),
		testPod("other", "c", "n1", "10.244.1.12", pay), // another namespace
		hostNet, done, failed, terminating, pending, noIP, v6, dual, legacy, unscheduled)
	v, _ := BuildView(Inputs{Node: "n1", Nodes: []*corev1.Node{testNode("n1", "10.0.0.11")},
		Policies: []*egressgwv1.EgressPolicy{testPolicy("pay", "db", "gw", "", "", true)}, PodsIn: pods})
	want := []nodeagent.PodRef{
		{IP: netip.MustParseAddr("10.244.1.10"), Node: "n1"},
		{IP: netip.MustParseAddr("10.244.1.15"), Node: "n1"},
		{IP: netip.MustParseAddr("10.244.1.17"), Node: "n1"},
		{IP: netip.MustParseAddr("10.244.1.18"), Node: "n1"},
		{IP: netip.MustParseAddr("10.244.2.16"), Node: "n2"},
	}
	if got := v.Policies[0].Pods; !reflect.DeepEqual(got, want) {
		t.Errorf("selected %v\nwant     %v", got, want)
	}

	all := testPolicy("pay", "all", "gw", "", "", true)
	all.Spec.PodSelector = nil
	v, _ = BuildView(Inputs{Node: "n1", Nodes: []*corev1.Node{testNode("n1", "10.0.0.11")},
		Policies: []*egressgwv1.EgressPolicy{all}, PodsIn: pods})
	if got := len(v.Policies[0].Pods); got != 6 {
		t.Errorf("no podSelector selected %d pods (%v), want all 6 that can send", got, v.Policies[0].Pods)
	}
}

// TestBuildViewRanges: cluster ranges come from the flags, ServiceCIDRs and every node's podCIDRs; nodes
// without an IPv4 InternalIP are left out with a problem; policy CIDRs are parsed.
func TestBuildViewRanges(t *testing.T) {
	p := testPolicy("pay", "db", "gw", "", "", true)
	p.Spec.DestinationCIDRs = []string{"192.0.2.0/24", "bogus"}
	p.Spec.ExcludedCIDRs = []string{"192.0.2.8/32"}
	deleting := testPolicy("pay", "old", "gw", "", "", true)
	deleting.DeletionTimestamp = &metav1.Time{}
	v6node := testNode("n3", "fd00::3")
	v, problems := BuildView(Inputs{Node: "n1",
		Nodes:        []*corev1.Node{testNode("n2", "10.0.0.12", "10.244.2.0/24"), testNode("n1", "10.0.0.11", "10.244.1.0/24", "fd00:1::/64"), v6node},
		Policies:     []*egressgwv1.EgressPolicy{p, deleting},
		PodsIn:       podsByNamespace(),
		ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12"), netip.MustParsePrefix("10.244.1.0/24")},
		ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.100.0.0/16")},
	})
	wantRanges := []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12"), netip.MustParsePrefix("10.100.0.0/16"),
		netip.MustParsePrefix("10.244.1.0/24"), netip.MustParsePrefix("10.244.2.0/24")}
	if !reflect.DeepEqual(v.ClusterCIDRs, wantRanges) {
		t.Errorf("cluster ranges %v, want %v", v.ClusterCIDRs, wantRanges)
	}
	wantNodes := []nodeagent.NodeInfo{{Name: "n1", IP: netip.MustParseAddr("10.0.0.11")}, {Name: "n2", IP: netip.MustParseAddr("10.0.0.12")}}
	if !reflect.DeepEqual(v.Nodes, wantNodes) {
		t.Errorf("nodes %v, want %v", v.Nodes, wantNodes)
	}
	if len(v.Policies) != 1 || v.Policies[0].Key != "pay/db" {
		t.Fatalf("policies %+v: want only pay/db (pay/old is being deleted)", v.Policies)
	}
	if got := v.Policies[0].DestinationCIDRs; !reflect.DeepEqual(got, []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}) {
		t.Errorf("destinations %v", got)
	}
	if len(problems) != 2 {
		t.Errorf("problems %+v: want the IPv6-only node and the bogus CIDR", problems)
	}
}

// TestBuildViewEgressLink: this node's egress interface comes from a gateway's status.nodes.
func TestBuildViewEgressLink(t *testing.T) {
	gw := testGateway("gw")
	gw.Status.Nodes = []egressgwv1.GatewayNodeStatus{
		{Name: "n2", EgressInterface: &egressgwv1.EgressInterface{MAC: "02:00:00:00:00:02", Address: "10.0.1.12/24", Router: "10.0.1.1"}},
		{Name: "n1", EgressInterface: &egressgwv1.EgressInterface{MAC: "02:00:00:00:00:01", Address: "10.0.1.11/24", Router: "10.0.1.1"}},
	}
	v, _ := BuildView(Inputs{Node: "n1", Nodes: []*corev1.Node{testNode("n1", "10.0.0.11")},
		Gateways: []*egressgwv1.EgressGateway{gw}, PodsIn: podsByNamespace()})
	if v.EgressLink == nil || v.EgressLink.MAC.String() != "02:00:00:00:00:01" || v.EgressLink.Address != netip.MustParsePrefix("10.0.1.11/24") ||
		v.EgressLink.Router != netip.MustParseAddr("10.0.1.1") {
		t.Errorf("egress link %+v", v.EgressLink)
	}
	v, _ = BuildView(Inputs{Node: "n3", Nodes: []*corev1.Node{testNode("n3", "10.0.0.13")},
		Gateways: []*egressgwv1.EgressGateway{gw}, PodsIn: podsByNamespace()})
	if v.EgressLink != nil {
		t.Errorf("n3 has no egress interface, got %+v", v.EgressLink)
	}
}

func TestGatewayCandidate(t *testing.T) {
	gw := testGateway("gw", assigned("10.0.0.50", "n3", egressgwv1.AssignmentReleasing))
	labelled := testNode("n1", "10.0.0.11")
	labelled.Labels = map[string]string{"egressgw.io/gateway": "true"}
	for _, tc := range []struct {
		node *corev1.Node
		want bool
	}{{labelled, true}, {testNode("n2", "10.0.0.12"), false}, {testNode("n3", "10.0.0.13"), true}, {nil, false}} {
		if got := gatewayCandidate(tc.node, []*egressgwv1.EgressGateway{gw}); got != tc.want {
			t.Errorf("candidate(%v) = %v, want %v", tc.node, got, tc.want)
		}
	}
}
