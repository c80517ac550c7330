package nodeagent

import (
	"context"
	"errors"
	"os/exec"
	"regexp"
	"strconv"
	"testing"

	"github.com/egressgw/egressgw/test/netlab"
)

// legacyMasqueradeRE finds the counter of the test's masquerade rule in iptables-legacy-save -c.
var legacyMasqueradeRE = regexp.MustCompile(`(?m)^\[(\d+):\d+\] -A POSTROUTING .*legacy CNI: masquerade.*$`)

// TestBesideIptablesLegacy: a CNI that programs the legacy iptables (its own x_tables, not nftables)
// with its jumps first: a masquerade first in nat POSTROUTING, an ACCEPT of established flows first in
// mangle PREROUTING and an ACCEPT of pod traffic first in filter FORWARD. The kernel consults the NAT
// chains of both in priority order, so egressgw's binding at srcnat-1 still comes first: the steered
// pod leaves as the egress IP, an unselected pod through the legacy masquerade, and a policy without
// an egress IP stays fail-closed.
func TestBesideIptablesLegacy(t *testing.T) {
	if _, err := exec.LookPath("iptables-legacy"); errors.Is(err, exec.ErrNotFound) {
		t.Skip("needs iptables-legacy (Debian package iptables) to program the legacy tables")
	}
	l := newLab(t, netlab.Profile{}, 2, 3)
	ctx := context.Background()
	n1 := l.node(1)
	sel, plain, blocked := l.pod(1, 1), l.pod(1, 2), l.pod(1, 3)
	pods := netlab.PodSupernet.String()
	err := n1.NS.RunLines(ctx,
		// Only the legacy masquerade SNATs node1's pods, so its counter shows who did.
		[]string{"iptables", "-t", "nat", "-F", "POSTROUTING"},
		[]string{"iptables-legacy", "-t", "nat", "-I", "POSTROUTING", "1", "-s", pods, "!", "-d", pods,
			"-m", "comment", "--comment", "legacy CNI: masquerade", "-j", "MASQUERADE"},
		[]string{"iptables-legacy", "-t", "mangle", "-I", "PREROUTING", "1", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"},
		[]string{"iptables-legacy", "-t", "filter", "-I", "FORWARD", "1", "-s", pods, "-j", "ACCEPT"},
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, table := range []string{"nat", "mangle", "filter"} {
			_, _ = n1.NS.Run(context.Background(), nil, "iptables-legacy", "-t", table, "-F")
		}
	})
	if err := l.topo.RouteToNode(egressIP, l.node(2)); err != nil {
		t.Fatal(err)
	}
	l.apply(l.view(PolicyView{Key: "a/steered", Pods: podRefs(sel), EgressIP: egressIP, GatewayNode: "node2"},
		PolicyView{Key: "a/blocked", Pods: podRefs(blocked)}))
	for _, proto := range []string{"tcp", "udp"} {
		l.expectSource(sel.NS, proto, serverTCP, egressIP, "steered pod beside iptables-legacy")
		before := legacyMasquerades(t, n1)
		l.expectSource(plain.NS, proto, serverTCP, n1.IP, "unselected pod beside iptables-legacy")
		if after := legacyMasquerades(t, n1); after <= before {
			t.Errorf("unselected pod over %s: the legacy masquerade counted %d packets, want some", proto, after-before)
		}
	}
	if r, err := sel.NS.Ask(ctx, "tcp", serverTCP, "big", 60000); err != nil || r.Source.Addr() != egressIP {
		t.Errorf("60000-byte request of the steered pod: seen as %v (err %v), want %s", r.Source, err, egressIP)
	}
	if seen := sendUntilSeen(t, l, blocked.NS, "legacy-accept"); len(seen) != 0 {
		t.Errorf("pod of a policy without an egress IP beside the legacy ACCEPT: server saw %v, want nothing", seen)
	}
}

func legacyMasquerades(t *testing.T, n *netlab.Node) int {
	t.Helper()
	out, err := n.NS.Run(context.Background(), nil, "iptables-legacy-save", "-c", "-t", "nat")
	if err != nil {
		t.Fatal(err)
	}
	m := legacyMasqueradeRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no legacy masquerade rule:\n%s", out)
	}
	v, _ := strconv.Atoi(string(m[1]))
	return v
}
