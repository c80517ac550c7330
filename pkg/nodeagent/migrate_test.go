package nodeagent

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/egressgw/egressgw/test/netlab"
)

// oldVersionRules are the iptables chains and jumps of an earlier egressgw version (its rules first in
// the built-in chains, matching on ipsets), as it programmed a source node whose policy had no egress
// IP yet: the steered pod's traffic is dropped by the fail-closed rule until the chains are gone.
func oldVersionRules(src string) string {
	c := func(s string) string { return `-m comment --comment "egressgw: ` + s + `"` }
	return strings.Join([]string{
		"*mangle",
		":EGRESSGW-PREROUTING - [0:0]", ":EGRESSGW-MSS - [0:0]",
		"-I PREROUTING 1 " + c("steering and tunnel return marks") + " -j EGRESSGW-PREROUTING",
		"-I FORWARD 1 " + c("clamp TCP MSS for the tunnel") + " -j EGRESSGW-MSS",
		"-A EGRESSGW-PREROUTING -m set --match-set egressgw-cluster dst " + c("cluster destinations are never steered") + " -j RETURN",
		"-A EGRESSGW-MSS -o egressgw0 -p tcp -m tcp --tcp-flags SYN,RST SYN " + c("TCP entering the tunnel fits its MTU") + " -j TCPMSS --set-mss 1410",
		"COMMIT", "*nat",
		":EGRESSGW-POSTROUTING - [0:0]",
		"-I POSTROUTING 1 " + c("egress SNAT, and no CNI masquerade for steered packets") + " -j EGRESSGW-POSTROUTING",
		"-A EGRESSGW-POSTROUTING -m set --match-set egressgw-cluster dst " + c("cluster destinations keep their source") + " -j RETURN",
		"COMMIT", "*filter",
		":EGRESSGW-INPUT - [0:0]", ":EGRESSGW-FORWARD - [0:0]", ":EGRESSGW-ACCEPT - [0:0]",
		"-I INPUT 1 " + c("tunnel port only from cluster nodes") + " -j EGRESSGW-INPUT",
		"-I FORWARD 1 " + c("no unsolicited traffic to egress IPs") + " -j EGRESSGW-FORWARD",
		"-A FORWARD " + c("let tunnel traffic through") + " -j EGRESSGW-ACCEPT",
		"-A EGRESSGW-INPUT -p udp -m udp --dport 4866 -m set ! --match-set egressgw-nodes src " + c("tunnel packets only from cluster nodes") + " -j DROP",
		"-A EGRESSGW-FORWARD -m set --match-set " + src + " src -m set ! --match-set egressgw-cluster dst " + c("fail closed: no egress IP for policy a/b") + " -j DROP",
		"-A EGRESSGW-ACCEPT -o egressgw0 " + c("forward what leaves through the tunnel") + " -j ACCEPT",
		"COMMIT", "",
	}, "\n")
}

// TestMigrationFromIptables: Apply on a node that an earlier version programmed deletes that version's
// chains, jumps and ipsets (nothing of another owner), its stale drop no longer applies, and uninstall
// leaves the node as it was before either version.
func TestMigrationFromIptables(t *testing.T) {
	l := newLab(t, netlab.Profile{}, 2, 1)
	ctx := context.Background()
	if err := l.topo.RouteToNode(egressIP, l.node(2)); err != nil {
		t.Fatal(err)
	}
	pod := l.pod(1, 1)
	src := setName("s", "a/b")
	before := map[string]map[string]string{}
	for _, n := range l.topo.Nodes {
		instantiateChains(t, n)
		before[n.Name] = dumps(t, n.NS)
		err := n.NS.RunLines(ctx,
			[]string{"ipset", "create", setCluster, "hash:net"}, []string{"ipset", "add", setCluster, netlab.PodSupernet.String()},
			[]string{"ipset", "create", setNodes, "hash:ip"}, []string{"ipset", "create", src, "hash:ip"},
			[]string{"ipset", "add", src, pod.IP.String()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.NS.Run(ctx, []byte(oldVersionRules(src)), "iptables-restore", "--noflush"); err != nil {
			t.Fatal(err)
		}
	}
	if seen := sendUntilSeen(t, l, pod.NS, "old-version-drop"); len(seen) != 0 {
		t.Fatalf("the old version's fail-closed rule is not in force (server saw %v): the test proves nothing", seen)
	}
	policy := PolicyView{Key: "a/b", Pods: podRefs(pod), EgressIP: egressIP, GatewayNode: "node2"}
	for name, ch := range l.apply(l.view(policy)) {
		if ch.SetOps == 0 || ch.IptablesTables == 0 {
			t.Errorf("%s: the first apply after the old version changed %+v, want ipsets and iptables changed", name, ch)
		}
	}
	for _, n := range l.topo.Nodes {
		d := dumps(t, n.NS)
		for _, line := range strings.Split(d["iptables-save"], "\n") {
			if strings.Contains(line, ownChainPrefix) && !strings.Contains(line, chainAccept) {
				t.Errorf("%s: the old version's rule is still there: %s", n.Name, line)
			}
		}
		if strings.Contains(d["ipset list"], "Name: "+ownSetPrefix) {
			t.Errorf("%s: the old version's ipsets are still there:\n%s", n.Name, d["ipset list"])
		}
	}
	l.expectSource(pod.NS, "tcp", serverTCP, egressIP, "the steered pod after the migration")
	for _, n := range l.topo.Nodes {
		if ch := l.applyNode(n.Name, l.view(policy)); ch.Total() != 0 {
			t.Errorf("%s: second apply after the migration changed %+v", n.Name, ch)
		}
		if _, err := l.dps[n.Name].Uninstall(ctx); err != nil {
			t.Fatal(err)
		}
		compareDumps(t, fmt.Sprintf("%s after the migration and uninstall", n.Name), before[n.Name], dumps(t, n.NS))
	}
}

// instantiateChains makes iptables-nft create the built-in chains the old version used, which stay
// (empty) after its rules are gone, as on a node where that version ran.
func instantiateChains(t *testing.T, n *netlab.Node) {
	t.Helper()
	for _, tc := range [][2]string{{"mangle", "PREROUTING"}, {"mangle", "FORWARD"}, {"filter", "INPUT"}, {"filter", "FORWARD"}} {
		err := n.NS.RunLines(context.Background(), []string{"iptables", "-t", tc[0], "-A", tc[1], "-j", "RETURN"},
			[]string{"iptables", "-t", tc[0], "-D", tc[1], "-j", "RETURN"})
		if err != nil {
			t.Fatal(err)
		}
	}
}
