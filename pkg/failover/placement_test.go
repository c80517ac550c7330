package failover

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	subnetA = netip.MustParsePrefix("10.0.1.0/24")
	subnetB = netip.MustParsePrefix("10.0.2.0/24")
)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func node(name string, free int, subnets ...netip.Prefix) Node {
	return Node{Name: name, Free: free, Subnets: subnets}
}

func ineligible(n Node, why string) Node { n.Ineligible = why; return n }

func nodes(ns ...Node) map[string]Node {
	m := map[string]Node{}
	for _, n := range ns {
		m[n.Name] = n
	}
	return m
}

// placed maps gateway/IP to the chosen node, or to "!Reason" when unplaced.
func placed(ds []Decision) map[string]string {
	m := map[string]string{}
	for _, d := range ds {
		v := d.Node
		if v == "" {
			v = "!" + d.Reason
		}
		m[d.Gateway+"/"+d.IP.String()] = v
	}
	return m
}

func TestPlace(t *testing.T) {
	cases := []struct {
		name  string
		in    Input
		want  map[string]string
		moves int
	}{{
		name: "IPs spread over the healthy nodes of their subnet",
		in: Input{Nodes: nodes(node("a", 5, subnetA), node("b", 5, subnetA), node("c", 5, subnetA)),
			Gateways: []Gateway{{Name: "gw", IPs: []netip.Addr{ip("10.0.1.50"), ip("10.0.1.51"), ip("10.0.1.52")}, Nodes: []string{"a", "b", "c"}}}},
		// One IP per node; which IP lands where comes from the hash of IP and node.
		want:  map[string]string{"gw/10.0.1.50": "a", "gw/10.0.1.51": "c", "gw/10.0.1.52": "b"},
		moves: 3,
	}, {
		name: "a healthy assignment never moves, even when another node is emptier",
		in: Input{Nodes: nodes(node("a", 5, subnetA), node("b", 5, subnetA)),
			Gateways: []Gateway{{Name: "gw", IPs: []netip.Addr{ip("10.0.1.50"), ip("10.0.1.51")}, Nodes: []string{"a", "b"},
				Current: map[netip.Addr]string{ip("10.0.1.50"): "a", ip("10.0.1.51"): "a"}}}},
		want: map[string]string{"gw/10.0.1.50": "a", "gw/10.0.1.51": "a"},
	}, {
		name: "the IP of a failed node moves to a healthy node of the same subnet",
		in: Input{Nodes: nodes(ineligible(node("a", 5, subnetA), "AgentUnreachable"), node("b", 5, subnetB), node("c", 5, subnetA)),
			Gateways: []Gateway{{Name: "gw", IPs: []netip.Addr{ip("10.0.1.50")}, Nodes: []string{"a", "b", "c"},
				Current: map[netip.Addr]string{ip("10.0.1.50"): "a"}}}},
		want:  map[string]string{"gw/10.0.1.50": "c"},
		moves: 1,
	}, {
		name: "an IP does not return to a node that recovered",
		in: Input{Nodes: nodes(node("a", 5, subnetA), node("c", 5, subnetA)),
			Gateways: []Gateway{{Name: "gw", IPs: []netip.Addr{ip("10.0.1.50"), ip("10.0.1.51")}, Nodes: []string{"a", "c"},
				Current: map[netip.Addr]string{ip("10.0.1.50"): "c", ip("10.0.1.51"): "c"}}}},
		want: map[string]string{"gw/10.0.1.50": "c", "gw/10.0.1.51": "c"},
	}, {
		name: "a node that no longer matches the selector gives its IP up",
		in: Input{Nodes: nodes(node("a", 5, subnetA), node("b", 5, subnetA)),
			Gateways: []Gateway{{Name: "gw", IPs: []netip.Addr{ip("10.0.1.50")}, Nodes: []string{"b"},
				Current: map[netip.Addr]string{ip("10.0.1.50"): "a"}}}},
		want:  map[string]string{"gw/10.0.1.50": "b"},
		moves: 1,
	}, {
		name: "each IP goes only to a node of its own subnet",
		in: Input{Nodes: nodes(node("a", 5, subnetA), node("b", 5, subnetB)),
			Gateways: []Gateway{{Name: "gw", IPs: []netip.Addr{ip("10.0.1.50"), ip("10.0.2.50"), ip("10.0.1.51")}, Nodes: []string{"a", "b"}}}},
		want:  map[string]string{"gw/10.0.1.50": "a", "gw/10.0.1.51": "a", "gw/10.0.2.50": "b"},
		moves: 3,
	}, {
		name: "a full node is skipped, but keeps the IP it already holds",
		in: Input{Nodes: nodes(node("a", 0, subnetA), node("b", 1, subnetA)),
			Gateways: []Gateway{{Name: "gw", IPs: []netip.Addr{ip("10.0.1.50"), ip("10.0.1.51"), ip("10.0.1.52")}, Nodes: []string{"a", "b"},
				Current: map[netip.Addr]string{ip("10.0.1.50"): "a"}}}},
		want:  map[string]string{"gw/10.0.1.50": "a", "gw/10.0.1.51": "b", "gw/10.0.1.52": "!CapacityExhausted"},
		moves: 1,
	}, {
		name: "gateways sharing a node share its free capacity",
		in: Input{Nodes: nodes(node("a", 1, subnetA)),
			Gateways: []Gateway{
				{Name: "one", IPs: []netip.Addr{ip("10.0.1.50")}, Nodes: []string{"a"}},
				{Name: "two", IPs: []netip.Addr{ip("10.0.1.60")}, Nodes: []string{"a"}},
			}},
		want:  map[string]string{"one/10.0.1.50": "a", "two/10.0.1.60": "!CapacityExhausted"},
		moves: 1,
	}, {
		name: "an IP listed by two gateways belongs to the older one only",
		in: Input{Nodes: nodes(node("a", 5, subnetA), node("b", 5, subnetA)),
			Gateways: []Gateway{
				{Name: "newer", Created: time.Unix(200, 0), IPs: []netip.Addr{ip("10.0.1.50")}, Nodes: []string{"a", "b"}},
				{Name: "older", Created: time.Unix(100, 0), IPs: []netip.Addr{ip("10.0.1.50")}, Nodes: []string{"a", "b"},
					Current: map[netip.Addr]string{ip("10.0.1.50"): "b"}},
			}},
		want: map[string]string{"newer/10.0.1.50": "!IPConflict", "older/10.0.1.50": "b"},
	}, {
		name: "no node matches the selector",
		in:   Input{Nodes: nodes(), Gateways: []Gateway{{Name: "gw", IPs: []netip.Addr{ip("10.0.1.50")}}}},
		want: map[string]string{"gw/10.0.1.50": "!NoGatewayNodes"},
	}, {
		name: "every gateway node is ineligible",
		in: Input{Nodes: nodes(ineligible(node("a", 5, subnetA), "NotReady"), ineligible(node("b", 5, subnetA), "Cordoned")),
			Gateways: []Gateway{{Name: "gw", IPs: []netip.Addr{ip("10.0.1.50")}, Nodes: []string{"a", "b"}}}},
		want: map[string]string{"gw/10.0.1.50": "!NoEligibleNode"},
	}, {
		name: "no eligible node in the IP's subnet",
		in: Input{Nodes: nodes(node("a", 5, subnetA), ineligible(node("b", 5, subnetB), "Deleting")),
			Gateways: []Gateway{{Name: "gw", IPs: []netip.Addr{ip("10.0.2.50")}, Nodes: []string{"a", "b"},
				Current: map[netip.Addr]string{ip("10.0.2.50"): "b"}}}},
		want: map[string]string{"gw/10.0.2.50": "!NoNodeInSubnet"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ds := Place(tc.in)
			if got := placed(ds); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("placement\n got %v\nwant %v", got, tc.want)
			}
			moves := 0
			for _, d := range ds {
				if d.Moves() {
					moves++
				}
				if d.Node == "" && d.Message == "" {
					t.Errorf("%s unplaced without a message", d.IP)
				}
			}
			if moves != tc.moves {
				t.Errorf("%d moves, want %d", moves, tc.moves)
			}
		})
	}
}

func TestUnplacedMessagesSayWhatToFix(t *testing.T) {
	in := Input{Nodes: nodes(node("a", 0, subnetA), node("b", 3, subnetB), ineligible(node("c", 5, subnetA), "NotReady")),
		Gateways: []Gateway{{Name: "gw", IPs: []netip.Addr{ip("10.0.1.50"), ip("10.0.9.50")}, Nodes: []string{"a", "b", "c"}}}}
	want := map[string][]string{
		"10.0.1.50": {"no free IP address slot", "1 no free slot (a)"},
		"10.0.9.50": {"no eligible gateway node has a subnet that contains 10.0.9.50", "1 in 10.0.1.0/24 (a)", "1 in 10.0.2.0/24 (b)"},
	}
	for _, d := range Place(in) {
		for _, fragment := range want[d.IP.String()] {
			if !strings.Contains(d.Message, fragment) {
				t.Errorf("%s: message %q lacks %q", d.IP, d.Message, fragment)
			}
		}
	}
	in.Nodes = nodes(ineligible(node("a", 5, subnetA), "NotReady"), ineligible(node("b", 5, subnetA), "AgentUnreachable"))
	in.Gateways[0].Nodes = []string{"b", "a"}
	d := Place(in)[0]
	if want := "none of the 2 gateway nodes can hold an IP: 1 AgentUnreachable (b), 1 NotReady (a)"; d.Message != want {
		t.Errorf("message %q, want %q", d.Message, want)
	}
}

// TestPlaceIsDeterministic shuffles every list of the input: a replica that lists nodes, gateways and
// IPs in another order must decide exactly the same.
func TestPlaceIsDeterministic(t *testing.T) {
	in := Input{Nodes: nodes(node("a", 3, subnetA), node("b", 2, subnetA, subnetB), node("c", 4, subnetB), node("d", 1, subnetA)),
		Gateways: []Gateway{
			{Name: "one", IPs: []netip.Addr{ip("10.0.1.50"), ip("10.0.1.51"), ip("10.0.2.50"), ip("10.0.2.51")}, Nodes: []string{"a", "b", "c", "d"}},
			{Name: "two", IPs: []netip.Addr{ip("10.0.1.60"), ip("10.0.2.60"), ip("10.0.1.61")}, Nodes: []string{"b", "c", "d"},
				Current: map[netip.Addr]string{ip("10.0.2.60"): "c"}},
		}}
	want := Place(in)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		rng.Shuffle(len(in.Gateways), func(i, j int) { in.Gateways[i], in.Gateways[j] = in.Gateways[j], in.Gateways[i] })
		for _, gw := range in.Gateways {
			rng.Shuffle(len(gw.IPs), func(i, j int) { gw.IPs[i], gw.IPs[j] = gw.IPs[j], gw.IPs[i] })
			rng.Shuffle(len(gw.Nodes), func(i, j int) { gw.Nodes[i], gw.Nodes[j] = gw.Nodes[j], gw.Nodes[i] })
		}
		if got := Place(in); !reflect.DeepEqual(got, want) {
			t.Fatalf("shuffled input changed the decisions:\n got %v\nwant %v", placed(got), placed(want))
		}
	}
}

func TestPolicyIP(t *testing.T) {
	ips := []netip.Addr{ip("10.0.1.50"), ip("10.0.1.51"), ip("10.0.2.50")}
	all := map[netip.Addr]bool{ips[0]: true, ips[1]: true, ips[2]: true}
	var none netip.Addr

	if c := PolicyIP("ns/p", ips, all, ip("10.0.2.50"), ips[0]); c.IP != ip("10.0.2.50") {
		t.Errorf("pin not obeyed: %+v", c)
	}
	if c := PolicyIP("ns/p", ips, all, ip("10.0.9.9"), none); c.Reason != ReasonPinNotInGateway || c.IP.IsValid() {
		t.Errorf("a pin outside the gateway must be refused: %+v", c)
	}
	if c := PolicyIP("ns/p", ips, all, none, ips[1]); c.IP != ips[1] {
		t.Errorf("a placed current IP must be kept: %+v", c)
	}
	onlyB := map[netip.Addr]bool{ips[2]: true}
	if c := PolicyIP("ns/p", ips, onlyB, none, ips[1]); c.IP != ips[2] {
		t.Errorf("a policy whose IP is unplaced must take a placed one: %+v", c)
	}
	if c := PolicyIP("ns/p", nil, all, none, none); c.Reason != ReasonGatewayHasNoIPs {
		t.Errorf("no IPs: %+v", c)
	}
	// Without history, policies spread over the IPs and each replica picks the same.
	seen := map[netip.Addr]int{}
	for i := range 60 {
		key := "ns/p" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		first := PolicyIP(key, ips, all, none, none)
		if again := PolicyIP(key, ips, all, none, none); again != first {
			t.Fatalf("%s: %v then %v", key, first, again)
		}
		seen[first.IP]++
	}
	if len(seen) != len(ips) {
		t.Errorf("60 policies used only %v of %d IPs", seen, len(ips))
	}
}

// TestUnplacedMessagesStayShort: with 500 ineligible nodes under long, EKS-style names the message
// counts the nodes per cause and names a few, instead of listing all of them.
func TestUnplacedMessagesStayShort(t *testing.T) {
	in := Input{Nodes: map[string]Node{}, Gateways: []Gateway{{Name: "gw", IPs: []netip.Addr{ip("10.0.1.50")}}}}
	for i := range 500 {
		name := fmt.Sprintf("ip-10-0-%d-%d.us-east-1.compute.internal", i/200, i%200)
		why := []string{"NotReady", "AgentUnreachable", "Cordoned"}[i%3]
		in.Nodes[name] = ineligible(node(name, 5, subnetA), why)
		in.Gateways[0].Nodes = append(in.Gateways[0].Nodes, name)
	}
	d := Place(in)[0]
	if len(d.Message) > 600 || !strings.Contains(d.Message, "167 AgentUnreachable (ip-10-0-0-1.us-east-1.compute.internal, ") ||
		!strings.Contains(d.Message, "and 164 more") || !strings.Contains(d.Message, "none of the 500 gateway nodes") {
		t.Errorf("message (%d bytes): %s", len(d.Message), d.Message)
	}
}

// TestUnconfirmedAndUnsettledNodes: an Unconfirmed node keeps an IP that no eligible node can take and
// gives up one that another can; a node with NoNewIPs keeps its IPs and takes no new one.
func TestUnconfirmedAndUnsettledNodes(t *testing.T) {
	unconfirmed := ineligible(node("b", 5, subnetB), "AgentUnreachable")
	unconfirmed.Unconfirmed = true
	unsettled := node("c", 5, subnetA)
	unsettled.NoNewIPs = true
	in := Input{Nodes: nodes(node("a", 5, subnetA), unconfirmed, unsettled),
		Gateways: []Gateway{{Name: "gw", IPs: []netip.Addr{ip("10.0.2.50"), ip("10.0.1.50"), ip("10.0.1.51"), ip("10.0.1.52")},
			Nodes:   []string{"a", "b", "c"},
			Current: map[netip.Addr]string{ip("10.0.2.50"): "b", ip("10.0.1.50"): "c", ip("10.0.1.51"): "b"}}}}
	got := placed(Place(in))
	want := map[string]string{"gw/10.0.2.50": "b", "gw/10.0.1.50": "c", "gw/10.0.1.51": "a", "gw/10.0.1.52": "a"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("placed %v, want %v", got, want)
	}
	for _, d := range Place(in) {
		if d.IP == ip("10.0.2.50") && (d.Reason != ReasonKeptOnUnconfirmed || !strings.Contains(d.Message, "kept on b")) {
			t.Errorf("decision %+v does not say why it stays", d)
		}
	}
}
