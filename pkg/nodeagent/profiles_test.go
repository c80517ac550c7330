package nodeagent

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/egressgw/egressgw/test/netlab"
)

// TestRulesOfOtherOwnersAtOurPriority shows a bug (it fails until egressgw owns only its own rules at
// its priorities): Cilium moves the kernel's "from all lookup local" rule from priority 0 to 100
// (Cilium's linux_defaults.RulePriorityLocalLookup, whenever its L7 proxy is on, the default; GKE
// Dataplane V2 nodes show it too). 100 is egressgw's default RulePriority, and the datapath treats every
// rule at RulePriority and RulePriority+1 as its own: the first Apply deletes Cilium's rule, and the node
// loses local delivery (nothing addressed to it, replies included, is received any more).
func TestRulesOfOtherOwnersAtOurPriority(t *testing.T) {
	if DefaultConfig().RulePriority != ciliumLocalPriority {
		t.Logf("default rule priority %d; the lab moves egressgw's rules onto Cilium's %d to keep the case", DefaultConfig().RulePriority, ciliumLocalPriority)
	}
	l := newLab(t, netlab.Profile{CNI: netlab.Cilium(), Proxy: netlab.KubeProxyIPTables}, 2, 1)
	l.cfg = DefaultConfig()
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
		out, err := n.NS.Run(context.Background(), nil, "ip", "rule", "show", "priority", fmt.Sprint(ciliumLocalPriority))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), "from all lookup local") {
			t.Errorf("%s: Cilium's local rule at priority %d is gone after Apply; rules there now:\n%s", n.Name, ciliumLocalPriority, out)
		}
	}
	l.expectSource(l.node(1).NS, "tcp", serverTCP, l.node(1).IP, "node1 itself after Apply")
	l.expectSource(l.pod(1, 1).NS, "tcp", serverTCP, egressIP, "the selected pod after Apply")
}

// ciliumLocalPriority is where Cilium moves the kernel's local rule.
const ciliumLocalPriority = 100

// TestCheckMarksUnderProfiles runs the start-time mark check on a node of each profile with the
// default configuration. It is accepted everywhere but beside Cilium (and GKE Dataplane V2), whose
// eBPF programs carry identities in bits 0xffff00ff and whose proxy rule sets the whole mark: there the
// check refuses, naming Cilium's rule.
func TestCheckMarksUnderProfiles(t *testing.T) {
	forEachProfile(t, func(t *testing.T, p netlab.Profile) {
		l := newLab(t, p, 1, 1)
		_, err := l.dps["node1"].CheckMarks(context.Background())
		switch {
		case ciliumLocalRule(p) && (err == nil || !strings.Contains(err.Error(), "CILIUM_")):
			t.Errorf("defaults %#x/%#x beside Cilium: CheckMarks = %v, want a refusal naming a CILIUM_ rule", l.cfg.SteerMask, l.cfg.ReplyMark, err)
		case !ciliumLocalRule(p) && err != nil:
			t.Errorf("defaults %#x/%#x refused under %s: %v", l.cfg.SteerMask, l.cfg.ReplyMark, p.Name(), err)
		}
	})
}

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
