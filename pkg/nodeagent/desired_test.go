package nodeagent

import (
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

var (
	n1 = NodeInfo{Name: "n1", IP: netip.MustParseAddr("10.0.0.11")}
	n2 = NodeInfo{Name: "n2", IP: netip.MustParseAddr("10.0.0.12")}
	n3 = NodeInfo{Name: "n3", IP: netip.MustParseAddr("10.0.0.13")}
)

func pod(ip, node string) PodRef { return PodRef{IP: netip.MustParseAddr(ip), Node: node} }

func testView(node string, policies ...PolicyView) View {
	return View{
		Node: node, Nodes: []NodeInfo{n1, n2, n3},
		ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("10.96.0.0/12")},
		Policies:     policies,
	}
}

var webPolicy = PolicyView{
	Key:              "shop/web",
	Pods:             []PodRef{pod("10.244.1.5", "n1"), pod("10.244.1.6", "n1"), pod("10.244.2.5", "n2"), pod("10.244.3.5", "n3")},
	DestinationCIDRs: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
	ExcludedCIDRs:    []netip.Prefix{netip.MustParsePrefix("192.0.2.8/32")},
	EgressIP:         netip.MustParseAddr("10.0.0.100"),
	GatewayNode:      "n3",
}

func setByName(d *Desired, name string) *IPSet {
	for i := range d.Sets {
		if d.Sets[i].Name == name {
			return &d.Sets[i]
		}
	}
	return nil
}

func TestDesiredSourceNode(t *testing.T) {
	d, err := DesiredState(testView("n1", webPolicy), DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Steers) != 1 || len(d.SNATs) != 0 || len(d.Returns) != 0 {
		t.Fatalf("steers %v snats %v returns %v: want one steer only", d.Steers, d.SNATs, d.Returns)
	}
	s := d.Steers[0]
	if s.Gateway.IP != n3.IP || s.Gateway.Index == 0 {
		t.Errorf("steer gateway %+v, want n3 with a non-zero index", s.Gateway)
	}
	if got := setByName(d, s.Src).Members; !reflect.DeepEqual(got, []string{"10.244.1.5", "10.244.1.6"}) {
		t.Errorf("source set %v: want only n1's pods", got)
	}
	if got := setByName(d, s.Dst).Members; !reflect.DeepEqual(got, []string{"192.0.2.0/24"}) {
		t.Errorf("destination set %v", got)
	}
	if got := setByName(d, s.Excluded).Members; !reflect.DeepEqual(got, []string{"192.0.2.8"}) {
		t.Errorf("excluded set %v", got)
	}
	if len(d.Peers) != 1 || d.Peers[0].IP != n3.IP || d.Peers[0].MAC.String() != "0e:67:0a:00:00:0d" {
		t.Errorf("peers %v: want n3 with its derived MAC", d.Peers)
	}
	cluster := setByName(d, setCluster).Members
	for _, want := range []string{"10.244.0.0/16", "10.96.0.0/12", "10.0.0.11", "10.0.0.12", "10.0.0.13"} {
		if !contains(cluster, want) {
			t.Errorf("cluster set %v lacks %s", cluster, want)
		}
	}
}

func TestDesiredGatewayNode(t *testing.T) {
	d, err := DesiredState(testView("n3", webPolicy), DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Steers) != 0 || len(d.SNATs) != 1 || d.SNATs[0].EgressIP != webPolicy.EgressIP {
		t.Fatalf("steers %v snats %v: want one SNAT to the egress IP", d.Steers, d.SNATs)
	}
	if got := setByName(d, d.SNATs[0].Src).Members; len(got) != 4 {
		t.Errorf("SNAT source set %v: want all 4 selected pods, local one included", got)
	}
	want := []ReturnRoute{
		{Pod: netip.MustParseAddr("10.244.1.5"), Node: n1.IP},
		{Pod: netip.MustParseAddr("10.244.1.6"), Node: n1.IP},
		{Pod: netip.MustParseAddr("10.244.2.5"), Node: n2.IP},
	}
	if !reflect.DeepEqual(d.Returns, want) {
		t.Errorf("returns %v, want %v (no route for the gateway's own pod)", d.Returns, want)
	}
	if len(d.Peers) != 2 {
		t.Errorf("peers %v: want n1 and n2", d.Peers)
	}
}

func TestDesiredNodeWithoutRole(t *testing.T) {
	p := webPolicy
	p.Pods = []PodRef{pod("10.244.1.5", "n1")}
	d, err := DesiredState(testView("n2", p), DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Steers)+len(d.SNATs)+len(d.Returns)+len(d.Peers)+len(d.Gateways) != 0 {
		t.Errorf("n2 neither hosts a selected pod nor the IP, yet got %+v", d)
	}
	if len(d.Sets) != 2 {
		t.Errorf("sets %v: want only the shared cluster and node sets", d.Sets)
	}
}

func TestDesiredWarnsAndSkips(t *testing.T) {
	unplaced := webPolicy
	unplaced.Key, unplaced.GatewayNode, unplaced.EgressIP = "shop/unplaced", "", netip.Addr{}
	unknown := webPolicy
	unknown.Key, unknown.GatewayNode = "shop/unknown", "gone"
	d, err := DesiredState(testView("n1", unplaced, unknown), DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Steers) != 0 || len(d.Warnings) != 2 {
		t.Errorf("steers %v warnings %v: want no steering and two warnings", d.Steers, d.Warnings)
	}
	if _, err := DesiredState(testView("stranger"), DefaultConfig()); err == nil {
		t.Error("an unknown node must be an error")
	}
}

func TestDesiredAllDestinations(t *testing.T) {
	p := webPolicy
	p.DestinationCIDRs = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}
	p.ExcludedCIDRs = nil
	d, _ := DesiredState(testView("n1", p), DefaultConfig())
	if d.Steers[0].Dst != "" || d.Steers[0].Excluded != "" {
		t.Errorf("0.0.0.0/0 and no exclusions: steer %+v, want no destination or exclusion set", d.Steers[0])
	}
}

func TestDesiredIsDeterministic(t *testing.T) {
	other := webPolicy
	other.Key = "shop/api"
	a, _ := DesiredState(testView("n1", webPolicy, other), DefaultConfig())
	b, _ := DesiredState(testView("n1", other, webPolicy), DefaultConfig())
	if !reflect.DeepEqual(a, b) {
		t.Errorf("policy order changed the result:\n%+v\n%+v", a, b)
	}
}

func TestGatewayIndexesAreStable(t *testing.T) {
	ips := []netip.Addr{n1.IP, n2.IP, n3.IP}
	all, _ := allocateGateways(ips, 255)
	some, _ := allocateGateways(ips[1:], 255)
	for _, ip := range ips[1:] {
		if all[ip] != some[ip] {
			t.Errorf("%s: index %d with n1 present, %d without: marks must not shift", ip, all[ip], some[ip])
		}
	}
	full, warnings := allocateGateways(ips, 2)
	if len(full) != 2 || len(warnings) != 1 || !strings.Contains(warnings[0].String(), "no steering mark left") {
		t.Errorf("2 marks for 3 gateways: %v %v", full, warnings)
	}
}

func TestSetNamesFitIpset(t *testing.T) {
	name := setName("s", strings.Repeat("n", 63)+"/"+strings.Repeat("p", 253))
	if len(name) > 31 || !strings.HasPrefix(name, ownSetPrefix) {
		t.Errorf("set name %q: want at most 31 characters starting with %s", name, ownSetPrefix)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestDesiredEgressLink(t *testing.T) {
	view := View{Node: "gw", Nodes: []NodeInfo{{Name: "gw", IP: netip.MustParseAddr("10.0.0.12")}}}
	good := &EgressLink{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Address: netip.MustParsePrefix("10.0.1.17/24"),
		Router: netip.MustParseAddr("10.0.1.1")}
	view.EgressLink = good
	d, err := DesiredState(view, DefaultConfig())
	if err != nil || d.Egress == nil || d.Egress.MAC.String() != good.MAC.String() {
		t.Fatalf("DesiredState = %+v, %v; want the egress link taken over", d, err)
	}
	bad := *good
	bad.Router = netip.MustParseAddr("10.0.2.1") // outside the interface's subnet
	view.EgressLink = &bad
	d, _ = DesiredState(view, DefaultConfig())
	if d.Egress != nil || len(d.Warnings) != 1 || d.Warnings[0].Reason != ReasonEgressLinkIncomplete {
		t.Errorf("an egress link with its router outside its subnet: Egress %+v, warnings %q", d.Egress, d.Warnings)
	}
}
