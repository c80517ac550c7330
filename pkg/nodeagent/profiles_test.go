package nodeagent

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/egressgw/egressgw/test/netlab"
)

// TestCiliumLocalRuleKept runs the datapath beside the Cilium profile with egressgw's rules at the
// priority where Cilium moves the kernel's "from all lookup local" rule (100, Cilium's
// linux_defaults.RulePriorityLocalLookup, and egressgw's first default): Apply must keep Cilium's rule,
// and the node and a steered pod must still get their replies. Before egressgw owned only its own
// rules at its priorities, the first Apply deleted it and the node lost local delivery.
func TestCiliumLocalRuleKept(t *testing.T) {
	l := newLab(t, netlab.Profile{CNI: netlab.Cilium(), Proxy: netlab.KubeProxyIPTables}, 2, 1)
	l.cfg.RulePriority = ciliumLocalPriority
	for _, n := range l.topo.Nodes {
		dp, err := New(l.cfg, n.NS.NL, n.NS, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		l.dps[n.Name] = dp
	}
	if err := l.topo.RouteToNode(egressIP, l.node(2)); err != nil {
		t.Fatal(err)
	}
	l.apply(l.view(movingPolicy(l, "node2")))
	for _, n := range l.topo.Nodes {
		if err := l.topo.Verify(context.Background(), n); err != nil {
			t.Errorf("Cilium's state after Apply: %v", err)
		}
	}
	l.expectSource(l.node(1).NS, "tcp", serverTCP, l.node(1).IP, "node1 itself after Apply")
	l.expectSource(l.pod(1, 1).NS, "tcp", serverTCP, egressIP, "the selected pod after Apply")
}

// ciliumLocalPriority is where Cilium moves the kernel's local rule.
const ciliumLocalPriority = 100

// TestCheckMarksUnderProfiles runs the start-time mark check on a node of each profile: the defaults
// are accepted everywhere (beside Cilium, whose proxy rule sets the whole mark, with that rule as a
// warning), and marks inside a bit the profile uses are refused, naming the profile's rule.
func TestCheckMarksUnderProfiles(t *testing.T) {
	forEachProfile(t, func(t *testing.T, p netlab.Profile) {
		l := newLab(t, p, 1, 1)
		whole, err := l.dps["node1"].CheckMarks(context.Background())
		if err != nil {
			t.Errorf("defaults %#x/%#x refused under %s: %v", l.cfg.SteerMask, l.cfg.ReplyMark, p.Name(), err)
		}
		if ciliumLocalRule(p) && len(whole) == 0 {
			t.Errorf("beside Cilium: no warning for its whole-mark socket rule")
		}
		// egressgw's own table, with its marks, is not another owner's: a restarted agent's check passes.
		l.apply(l.view(PolicyView{Key: "a/b", Pods: podRefs(l.pod(1, 1)), EgressIP: egressIP, GatewayNode: "node1"}))
		if _, err := l.dps["node1"].CheckMarks(context.Background()); err != nil {
			t.Errorf("defaults refused after egressgw's own Apply under %s: %v", p.Name(), err)
		}
		for _, m := range l.topo.Marks() {
			if m.Mask == 0xffffffff || m.Value == 0 {
				continue
			}
			cfg := DefaultConfig()
			cfg.SteerMask, cfg.ReplyMark = 0x3f, lowestBit(m.Value)
			dp, err := New(cfg, l.node(1).NS.NL, l.node(1).NS, testLogger(t))
			if err != nil {
				continue // statically refused already (a well-known default)
			}
			if _, err := dp.CheckMarks(context.Background()); err == nil {
				t.Errorf("reply mark %#x accepted beside %s", cfg.ReplyMark, m)
			}
		}
	})
}

func lowestBit(v uint32) uint32 { return v & -v }

// TestCheckMarksAWSConnmarkConfigured: the VPC CNI's connmark is a setting (AWS_VPC_K8S_CNI_CONNMARK),
// so configuration validation alone cannot keep egressgw clear of it. A node whose CNI runs with the
// connmark on egressgw's reply bit, or inside its steer mask, is refused at start, naming the CNI's
// rule; a connmark elsewhere is accepted.
func TestCheckMarksAWSConnmarkConfigured(t *testing.T) {
	cfg := DefaultConfig()
	for _, tc := range []struct {
		connmark uint32
		refused  bool
	}{{cfg.ReplyMark, true}, {cfg.steerMark(1), true}, {0x400000, false}} {
		t.Run(fmt.Sprintf("connmark %#x", tc.connmark), func(t *testing.T) {
			l := newLab(t, netlab.Profile{CNI: netlab.AWSVPCCNI(netlab.AWSOptions{Connmark: tc.connmark}), Proxy: netlab.KubeProxyIPTables}, 1, 1)
			_, err := l.dps["node1"].CheckMarks(context.Background())
			if tc.refused && (err == nil || !strings.Contains(err.Error(), "AWS, ")) {
				t.Errorf("CheckMarks = %v, want a refusal naming the VPC CNI's rule", err)
			}
			if !tc.refused && err != nil {
				t.Errorf("CheckMarks = %v, want the connmark %#x accepted", err, tc.connmark)
			}
		})
	}
}

// TestCNIRefreshAfterApply: CNIs that keep their jumps first re-insert them on every refresh (felix
// every 90 s by default), so after a while their rules run before egressgw's in the built-in chains.
// Steered connections, large ones included, must still leave with the egress IP, and unselected pods
// with the CNI's source.
func TestCNIRefreshAfterApply(t *testing.T) {
	forEachProfile(t, func(t *testing.T, p netlab.Profile) {
		l := newLab(t, p, 2, 2)
		if err := l.topo.RouteToNode(egressIP, l.node(2)); err != nil {
			t.Fatal(err)
		}
		l.apply(l.view(movingPolicy(l, "node2")))
		for _, n := range l.topo.Nodes {
			if err := l.topo.ReassertCNI(context.Background(), n); err != nil {
				t.Fatal(err)
			}
		}
		for _, proto := range []string{"tcp", "udp"} {
			before := cniSNATPackets(t, l, l.node(1))
			l.expectSource(l.pod(1, 1).NS, proto, serverTCP, egressIP, "steered pod after the CNI's refresh")
			if after := cniSNATPackets(t, l, l.node(1)); after != before {
				t.Errorf("steered pod over %s: the CNI's SNAT rule first in nat POSTROUTING counted %d packets, want none (egressgw's binding comes first)", proto, after-before)
			}
			l.expectOrdinary(l.pod(1, 2), proto, serverTCP, "unselected pod after the CNI's refresh")
		}
		r, err := l.pod(1, 1).NS.Ask(context.Background(), "tcp", serverTCP, "big", 60000)
		if err != nil || r.Source.Addr() != egressIP {
			t.Errorf("60000-byte request of the steered pod after the CNI's refresh: seen as %v (err %v), want %s", r.Source, err, egressIP)
		}
		if t.Failed() {
			logCounters(t, l.node(1), "nat")
			logCounters(t, l.node(1), "mangle")
			logCounters(t, l.node(2), "filter")
			logNftTable(t, l.node(1))
			logNftTable(t, l.node(2))
		}
	})
}

func cniSNATPackets(t *testing.T, l *lab, n *netlab.Node) int {
	t.Helper()
	v, err := l.topo.SNATPackets(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// logCounters logs a table of n with its packet counters, for the evidence of a failure.
func logCounters(t *testing.T, n *netlab.Node, table string) {
	t.Helper()
	out, err := n.NS.Run(context.Background(), nil, "iptables-save", "-c", "-t", table)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s %s:\n%s", n.Name, table, out)
}

// logNftTable logs egressgw's nftables table of n with its counters, without the sets' members.
func logNftTable(t *testing.T, n *netlab.Node) {
	t.Helper()
	out, err := n.NS.Run(context.Background(), nil, "nft", "-t", "list", "table", "ip", nftTableName)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s nft:\n%s", n.Name, out)
}

// awsVariants are the VPC CNI settings EKS clusters change: the connmark moved
// (AWS_VPC_K8S_CNI_CONNMARK) and external SNAT (AWS_VPC_K8S_CNI_EXTERNALSNAT, pods behind a NAT gateway).
var awsVariants = []netlab.Profile{
	{CNI: netlab.AWSVPCCNI(netlab.AWSOptions{Connmark: 0x400000}), Proxy: netlab.KubeProxyIPTables},
	{CNI: netlab.AWSVPCCNI(netlab.AWSOptions{ExternalSNAT: true}), Proxy: netlab.KubeProxyIPTables},
}

// TestEgressUnderAWSVariants runs the core packet tests (selected, unselected, through the tunnel, a
// move) beside the VPC CNI with those settings changed.
func TestEgressUnderAWSVariants(t *testing.T) {
	t.Run("through the gateway", func(t *testing.T) { forProfiles(t, awsVariants, testEgressThroughGateway) })
	t.Run("moves", func(t *testing.T) { forProfiles(t, awsVariants, testEgressIPMoves) })
}
