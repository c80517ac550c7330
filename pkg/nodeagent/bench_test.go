package nodeagent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/egressgw/egressgw/test/netlab"
	"github.com/vishvananda/netlink"
)

// benchNode is a namespace with a veth uplink (this kernel has no dummy links) that holds the node IP:
// enough for the whole datapath (nothing is sent in these benchmarks).
func benchNode(b *testing.B, nodeIP netip.Addr) (*netlab.Namespace, *Datapath) {
	requireRoot(b)
	ns, err := netlab.NewNamespace(context.Background(), netlab.RandomPrefix()+"-bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ns.Close() })
	if err := ns.NL.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0", MTU: 1500}, PeerName: "eth0peer"}); err != nil {
		b.Fatal(err)
	}
	if err := ns.LinkUp("eth0peer", netip.Prefix{}); err != nil {
		b.Fatal(err)
	}
	if err := ns.LinkUp("eth0", netip.PrefixFrom(nodeIP, 16)); err != nil {
		b.Fatal(err)
	}
	dp, err := New(DefaultConfig(), ns.NL, ns, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	return ns, dp
}

// scaleView is 10,000 selected pods across 100 policies and 3 gateway nodes (g1..g3, policies
// round-robin), plus 100 worker nodes. podsOnSelf puts every pod on the programmed node itself;
// otherwise pods spread over the workers. allOnG1 makes g1 hold every egress IP.
func scaleView(self string, podsOnSelf, allOnG1 bool) View {
	v := View{Node: self, ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.32.0.0/11")}}
	for i := 1; i <= 3; i++ {
		v.Nodes = append(v.Nodes, NodeInfo{Name: fmt.Sprintf("g%d", i), IP: netip.AddrFrom4([4]byte{10, 1, 0, byte(i)})})
	}
	for i := 1; i <= 100; i++ {
		v.Nodes = append(v.Nodes, NodeInfo{Name: fmt.Sprintf("w%d", i), IP: netip.AddrFrom4([4]byte{10, 1, 1, byte(i)})})
	}
	v.Nodes = append(v.Nodes, NodeInfo{Name: "self", IP: netip.MustParseAddr("10.1.2.1")})
	for p := range 100 {
		v.Policies = append(v.Policies, scalePolicy(p, podsOnSelf, allOnG1))
	}
	return v
}

func scalePolicy(p int, podsOnSelf, allOnG1 bool) PolicyView {
	gw := fmt.Sprintf("g%d", p%3+1)
	if allOnG1 {
		gw = "g1"
	}
	pv := PolicyView{
		Key: fmt.Sprintf("ns%d/policy", p), EgressIP: netip.AddrFrom4([4]byte{10, 2, 0, byte(p + 1)}), GatewayNode: gw,
		DestinationCIDRs: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.0/24")},
		ExcludedCIDRs:    []netip.Prefix{netip.MustParsePrefix("192.0.2.8/32")},
	}
	for i := range 100 {
		node := fmt.Sprintf("w%d", i+1)
		if podsOnSelf {
			node = "self"
		}
		pv.Pods = append(pv.Pods, PodRef{IP: netip.AddrFrom4([4]byte{10, 32 + byte(p/64), byte(p % 64 * 4), byte(i + 10)}), Node: node})
	}
	return pv
}

var scaleCases = []struct {
	name, self       string
	podsOnSelf, allG bool
}{
	{"source-node-10000-local-pods", "self", true, false},
	{"gateway-1-of-3", "g1", false, false},
	{"gateway-holding-all-100-IPs", "g1", false, true},
}

// BenchmarkFullApply programs a fresh node (after Uninstall) with 10,000 selected pods across 100
// policies and 3 gateways, from the view: DesiredState plus Apply.
func BenchmarkFullApply(b *testing.B) {
	for _, c := range scaleCases {
		b.Run(c.name, func(b *testing.B) {
			ns, dp := benchNode(b, nodeIPOf(scaleView(c.self, c.podsOnSelf, c.allG), c.self))
			view := scaleView(c.self, c.podsOnSelf, c.allG)
			ctx := context.Background()
			for range b.N {
				b.StopTimer()
				if _, err := dp.Uninstall(ctx); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				d, err := DesiredState(view, DefaultConfig())
				if err != nil {
					b.Fatal(err)
				}
				if _, err := dp.Apply(ctx, d); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			reportObjects(b, ns)
		})
	}
}

func nodeIPOf(v View, name string) netip.Addr {
	for _, n := range v.Nodes {
		if n.Name == name {
			return n.IP
		}
	}
	return netip.Addr{}
}

// reportObjects reports what the apply programmed, so the figure says what it covers.
func reportObjects(b *testing.B, ns *netlab.Namespace) {
	k := newKernelState()
	out, err := ns.Run(context.Background(), nil, "nft", "-y", "list", "table", "ip", nftTableName)
	if err == nil {
		err = parseNftTable(out, k)
	}
	if err != nil {
		b.Fatal(err)
	}
	selected := 0
	for name, s := range k.sets {
		if strings.HasPrefix(name, ownSetPrefix+"s-") {
			selected += len(s.members)
		}
	}
	routes, err := ns.NL.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: int(DefaultConfig().ReturnTable)}, netlink.RT_FILTER_TABLE)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(selected), "selected-pod-set-entries")
	b.ReportMetric(float64(len(routes)), "return-routes")
}

// BenchmarkPodChange adds one selected pod to a programmed node and removes it again (two changes per
// iteration, reported per change), through Update (the event path) and through Apply (the resync path).
func BenchmarkPodChange(b *testing.B) {
	for _, c := range scaleCases {
		for _, path := range []string{"update", "apply"} {
			b.Run(c.name+"/"+path, func(b *testing.B) { benchPodChange(b, c.self, c.podsOnSelf, c.allG, path) })
		}
	}
}

func benchPodChange(b *testing.B, self string, podsOnSelf, allG bool, path string) {
	view := scaleView(self, podsOnSelf, allG)
	_, dp := benchNode(b, nodeIPOf(view, self))
	ctx := context.Background()
	base, _ := DesiredState(view, DefaultConfig())
	if _, err := dp.Apply(ctx, base); err != nil {
		b.Fatal(err)
	}
	node := "w7"
	if podsOnSelf {
		node = "self"
	}
	view.Policies[0].Pods = append(view.Policies[0].Pods, PodRef{IP: netip.MustParseAddr("10.60.0.1"), Node: node})
	grown, _ := DesiredState(view, DefaultConfig())
	step := dp.Update
	if path == "apply" {
		step = dp.Apply
	}
	b.ResetTimer()
	for range b.N {
		for _, d := range []*Desired{grown, base} {
			if ch, err := step(ctx, d); err != nil || ch.SetOps == 0 {
				b.Fatalf("changes %+v, err %v: the pod change did nothing", ch, err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(2*b.N)/1000, "ms/change")
}
