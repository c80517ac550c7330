package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/egressgw/egressgw/test/netlab"
)

// twoPolicies: pod 1 of node1 to everything through node2 as egressIP, pod 2 of node1 to the external
// /24 through node2 as egressIP2.
func twoPolicies(l *lab) []PolicyView {
	return []PolicyView{
		{Key: "a/all", Pods: podRefs(l.pod(1, 1)), EgressIP: egressIP, GatewayNode: "node2"},
		{Key: "b/partner", Pods: podRefs(l.pod(1, 2)), DestinationCIDRs: []netip.Prefix{netlab.ExternalSubnet},
			ExcludedCIDRs: []netip.Prefix{netip.PrefixFrom(netlab.AltServerIP, 32), netip.MustParsePrefix("198.51.100.64/26")},
			EgressIP:      egressIP2, GatewayNode: "node2"},
	}
}

// installForeign sets up state of another owner on a node, in every table we use: it must survive
// every Apply and Uninstall untouched (the profile's CNI rules are there already).
func installForeign(t *testing.T, n *netlab.Node) {
	t.Helper()
	err := n.NS.RunLines(context.Background(),
		[]string{"iptables", "-t", "mangle", "-A", "PREROUTING", "-m", "comment", "--comment", "cni: mark", "-j", "MARK", "--set-xmark", "0x10000/0x10000"},
		[]string{"iptables", "-N", "CNI-FORWARD"},
		[]string{"iptables", "-A", "CNI-FORWARD", "-s", netlab.PodSupernet.String(), "-j", "ACCEPT"},
		[]string{"iptables", "-A", "FORWARD", "-j", "CNI-FORWARD"},
		[]string{"ipset", "create", "cni-test", "hash:ip"},
		[]string{"ipset", "add", "cni-test", "10.244.9.9"},
		[]string{"ip", "route", "add", "10.9.9.0/24", "via", netlab.RouterIP.String(), "table", "77"},
		[]string{"ip", "rule", "add", "priority", "500", "from", n.PodCIDR.String(), "lookup", "77"},
	)
	if err != nil {
		t.Fatal(err)
	}
}

// normalise drops what legitimately differs after objects are re-created: ipset hash seeds and sizes,
// the order of sets and of their members, interface indexes, and the order of rules that share a
// priority (the kernel keeps insertion order; ours at one priority match disjoint marks).
func normalise(d map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range d {
		v = initvalRE.ReplaceAllString(v, "")
		v = sizeRE.ReplaceAllString(v, "")
		v = ifindexRE.ReplaceAllString(v, "")
		out[k] = membersRE.ReplaceAllStringFunc(v, sortLines)
	}
	out["ip rule"] = sortLines("\n" + out["ip rule"])
	out["nft list ruleset"] = sortNftSets(nftElementsRE.ReplaceAllStringFunc(out["nft list ruleset"], sortElements))
	blocks := strings.Split(out["ipset list"], "\n\n")
	slices.Sort(blocks)
	out["ipset list"] = strings.Join(blocks, "\n\n")
	return out
}

// sortLines sorts the member lines of one ipset, whose order follows the set's random hash seed.
func sortLines(block string) string {
	head, body, _ := strings.Cut(block, "\n")
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	slices.Sort(lines)
	return head + "\n" + strings.Join(lines, "\n") + "\n"
}

// sortNftSets moves the sets of a ruleset listing, which nft lists in the order they were created, to
// the end in name order.
func sortNftSets(ruleset string) string {
	sets := nftSetRE.FindAllString(ruleset, -1)
	slices.Sort(sets)
	return nftSetRE.ReplaceAllString(ruleset, "") + strings.Join(sets, "")
}

// sortElements sorts the members of one nft set listing, whose order follows the set's hash.
func sortElements(list string) string {
	inner := strings.TrimSuffix(strings.TrimPrefix(list, "elements = {"), "}")
	var members []string
	for _, m := range strings.Split(inner, ",") {
		members = append(members, strings.TrimSpace(m))
	}
	slices.Sort(members)
	return "elements = { " + strings.Join(members, ", ") + " }"
}

var (
	nftSetRE      = regexp.MustCompile(`(?m)^\tset [^\n]*\{\n(?:\t\t[^\n]*\n)*\t\}\n\n?`)
	nftElementsRE = regexp.MustCompile(`elements = \{[^}]*\}`)
	initvalRE     = regexp.MustCompile(` initval 0x[0-9a-f]+`)
	sizeRE        = regexp.MustCompile(`(?m)^Size in memory: \d+\n`)
	ifindexRE     = regexp.MustCompile(`(?m)^\d+: `)
	membersRE     = regexp.MustCompile(`(?m)^Members:\n(?:.+\n)+`)
)

// TestLifecycle proves idempotence, kill-and-resume, repair, removal of exactly one policy's state, and
// an uninstall that restores the node's dumps exactly, with another owner's state in every table.
func TestLifecycle(t *testing.T) { forEachProfile(t, testLifecycle) }

func testLifecycle(t *testing.T, p netlab.Profile) {
	l := newLab(t, p, 2, 2)
	for _, ip := range []netip.Addr{egressIP, egressIP2} {
		if err := l.topo.RouteToNode(ip, l.node(2)); err != nil {
			t.Fatal(err)
		}
	}
	before := map[string]map[string]string{}
	for _, n := range l.topo.Nodes {
		installForeign(t, n)
		before[n.Name] = dumps(t, n.NS)
	}
	full := l.view(twoPolicies(l)...)
	l.apply(full)
	ref := map[string]map[string]string{}
	for _, n := range l.topo.Nodes {
		ref[n.Name] = dumps(t, n.NS)
	}
	checkTraffic(t, l)

	t.Run("apply twice", func(t *testing.T) {
		for name, ch := range l.apply(full) {
			if ch.Total() != 0 {
				t.Errorf("%s: second apply changed %+v", name, ch)
			}
			compareDumps(t, name+" after a second apply", ref[name], dumps(t, l.topo.Node(name).NS))
		}
	})
	t.Run("restarted agent", func(t *testing.T) {
		for _, n := range l.topo.Nodes {
			fresh, err := New(l.cfg, n.NS.NL, n.NS, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			v := full
			v.Node = n.Name
			d, _ := DesiredState(v, l.cfg)
			if ch, err := fresh.Apply(context.Background(), d); err != nil || ch.Total() != 0 {
				t.Errorf("%s: a new agent's first apply on a programmed node: %+v, %v; want no change", n.Name, ch, err)
			}
		}
	})
	t.Run("remove one policy", func(t *testing.T) { checkPolicyRemoval(t, l, full, ref) })
	t.Run("kill and resume", func(t *testing.T) { checkResume(t, l, full, ref) })
	t.Run("repair", func(t *testing.T) { checkRepair(t, l, full, ref) })
	t.Run("uninstall", func(t *testing.T) {
		for _, n := range l.topo.Nodes {
			if _, err := l.dps[n.Name].Uninstall(context.Background()); err != nil {
				t.Fatal(err)
			}
			compareDumps(t, n.Name+" after uninstall", before[n.Name], dumps(t, n.NS))
			if ch, err := l.dps[n.Name].Uninstall(context.Background()); err != nil || ch.Total() != 0 {
				t.Errorf("%s: second uninstall: %+v, %v", n.Name, ch, err)
			}
		}
	})
}

func checkTraffic(t *testing.T, l *lab) {
	t.Helper()
	l.expectSource(l.pod(1, 1).NS, "tcp", serverTCP, egressIP, "policy a")
	l.expectSource(l.pod(1, 2).NS, "tcp", serverTCP, egressIP2, "policy b")
}

// checkPolicyRemoval removes policy b and compares with a node that only ever had policy a.
func checkPolicyRemoval(t *testing.T, l *lab, full View, ref map[string]map[string]string) {
	onlyA := l.view(twoPolicies(l)[0])
	l.apply(onlyA)
	removed := map[string]map[string]string{}
	for _, n := range l.topo.Nodes {
		removed[n.Name] = normalise(dumps(t, n.NS))
		if _, err := l.dps[n.Name].Uninstall(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	l.apply(onlyA)
	for _, n := range l.topo.Nodes {
		compareDumps(t, n.Name+": policy b removed vs never there", normalise(dumps(t, n.NS)), removed[n.Name])
	}
	l.expectOrdinary(l.pod(1, 2), "tcp", serverTCP, "pod of the removed policy")
	l.apply(full)
	for _, n := range l.topo.Nodes {
		compareDumps(t, n.Name+": policy b back", normalise(ref[n.Name]), normalise(dumps(t, n.NS)))
	}
}

// killingExec fails the n-th command, as if the agent died just before running it.
type killingExec struct {
	inner Exec
	n     int
	calls int
}

var errKilled = errors.New("agent killed")

func (k *killingExec) Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	k.calls++
	if k.calls == k.n {
		return nil, errKilled
	}
	return k.inner.Run(ctx, stdin, name, args...)
}

// Do runs fn in the inner Exec's namespace (the sysctl files are no command, so no kill point).
func (k *killingExec) Do(fn func() error) error { return k.inner.(nsDoer).Do(fn) }

// checkResume kills an Apply on a clean node before each of its commands in turn, then lets a new
// agent apply: the node must end exactly as after an uninterrupted apply.
func checkResume(t *testing.T, l *lab, full View, ref map[string]map[string]string) {
	ctx := context.Background()
	for _, n := range l.topo.Nodes {
		v := full
		v.Node = n.Name
		want, err := DesiredState(v, l.cfg)
		if err != nil {
			t.Fatal(err)
		}
		for k := 1; ; k++ {
			if _, err := l.dps[n.Name].Uninstall(ctx); err != nil {
				t.Fatal(err)
			}
			dying, _ := New(l.cfg, n.NS.NL, &killingExec{inner: n.NS, n: k}, testLogger(t))
			_, err := dying.Apply(ctx, want)
			if _, err := l.dps[n.Name].Apply(ctx, want); err != nil {
				t.Fatalf("%s: resume after a kill at command %d: %v", n.Name, k, err)
			}
			compareDumps(t, fmt.Sprintf("%s resumed after a kill at command %d", n.Name, k), normalise(ref[n.Name]), normalise(dumps(t, n.NS)))
			if !errors.Is(err, errKilled) {
				t.Logf("%s: an apply runs %d commands; killed before each of them", n.Name, k-1)
				break
			}
		}
	}
	checkTraffic(t, l)
}

// checkRepair damages node1's datapath in one way at a time; a resync must put it back.
func checkRepair(t *testing.T, l *lab, full View, ref map[string]map[string]string) {
	n := l.node(1)
	damages := [][]string{
		{"nft", "flush", "chain", "ip", nftTableName, "prerouting"},
		{"nft", "flush", "chain", "ip", nftTableName, "postrouting"},
		{"nft", "delete", "table", "ip", nftTableName},
		{"nft", "flush", "set", "ip", nftTableName, setName("s", "a/all")},
		{"iptables", "-F", chainAccept},
		{"ip", "rule", "del", "priority", fmt.Sprint(l.cfg.RulePriority + 1)},
		{"ip", "route", "flush", "table", fmt.Sprint(l.cfg.TableBase + steerIndex(t, l, "node1"))},
		{"ip", "neigh", "del", l.node(2).IP.String(), "dev", l.cfg.Device},
		{"ip", "link", "set", l.cfg.Device, "down"},
		{"ip", "link", "set", l.cfg.Device, "mtu", "1300"},
		{"ip", "link", "del", l.cfg.Device},
	}
	for _, d := range damages {
		if _, err := n.NS.Run(context.Background(), nil, d[0], d[1:]...); err != nil {
			t.Fatal(err)
		}
		if ch := l.applyNode("node1", full); ch.Total() == 0 {
			t.Errorf("after %v: apply changed nothing", d)
		}
		compareDumps(t, fmt.Sprintf("node1 repaired after %v", d), normalise(ref["node1"]), normalise(dumps(t, n.NS)))
	}
	// Another owner's rules first in the built-in chains are theirs to keep: nothing of ours depends on
	// the order there, so Apply changes nothing.
	for _, r := range []struct{ table, chain, target string }{
		{"nat", "POSTROUTING", "RETURN"}, {"mangle", "PREROUTING", "ACCEPT"}, {"filter", "FORWARD", "ACCEPT"},
	} {
		if _, err := n.NS.Run(context.Background(), nil, "iptables", "-t", r.table, "-I", r.chain, "1", "-j", r.target); err != nil {
			t.Fatal(err)
		}
		if ch := l.applyNode("node1", full); ch.Total() != 0 {
			t.Errorf("after another owner's -j %s first in %s %s: apply changed %+v, want nothing", r.target, r.table, r.chain, ch)
		}
		if _, err := n.NS.Run(context.Background(), nil, "iptables", "-t", r.table, "-D", r.chain, "1"); err != nil {
			t.Fatal(err)
		}
	}
	checkTraffic(t, l)
}
