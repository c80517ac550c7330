package nodeagent

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/egressgw/egressgw/test/netlab"
)

// TestForeignRulesAtOurPriorities: other owners put rules at egressgw's priorities (Cilium moves the
// kernel's "lookup local" rule from 0 to 100, the first default of egressgw's priority): Apply and
// Uninstall must keep them, and local delivery must keep working.
func TestForeignRulesAtOurPriorities(t *testing.T) {
	l := newLab(t, netlab.Profile{}, 2, 1)
	ctx := context.Background()
	p := l.cfg.RulePriority
	foreign := []string{
		"from all lookup local", // what Cilium does to the kernel's rule 0
		"from all fwmark 0x80/0x80 lookup main",
	}
	n1 := l.node(1).NS
	for i, r := range foreign {
		args := append([]string{"rule", "add", "pref", strconv.Itoa(p + i)}, strings.Fields(r)...)
		if _, err := n1.Run(ctx, nil, "ip", args...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n1.Run(ctx, nil, "ip", "rule", "del", "pref", "0", "lookup", "local"); err != nil {
		t.Fatal(err)
	}
	if err := l.topo.RouteToNode(egressIP, l.node(2)); err != nil {
		t.Fatal(err)
	}
	l.apply(l.view(movingPolicy(l, "node2")))
	l.expectSource(l.pod(1, 1).NS, "tcp", serverTCP, egressIP, "steered pod beside the foreign rules")
	checkForeignRules(t, n1Rules(t, l), p, foreign, "after Apply")
	if ch := l.applyNode("node1", l.view(movingPolicy(l, "node2"))); ch.Routing != 0 {
		t.Errorf("a second Apply changed %d rules or routes: it does not recognise its own", ch.Routing)
	}
	if _, err := l.dps["node1"].Uninstall(ctx); err != nil {
		t.Fatal(err)
	}
	rules := n1Rules(t, l)
	checkForeignRules(t, rules, p, foreign, "after Uninstall")
	if strings.Contains(rules, "/0x3f") || strings.Contains(rules, "/0x40") {
		t.Errorf("Uninstall left egressgw rules:\n%s", rules)
	}
}

func n1Rules(t *testing.T, l *lab) string {
	t.Helper()
	out, err := l.node(1).NS.Run(context.Background(), nil, "ip", "rule")
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func checkForeignRules(t *testing.T, rules string, p int, foreign []string, when string) {
	t.Helper()
	for i, r := range foreign {
		if !strings.Contains(rules, strconv.Itoa(p+i)+":\t"+r) {
			t.Errorf("%s: the foreign rule %q at %d is gone:\n%s", when, r, p+i, rules)
		}
	}
}
