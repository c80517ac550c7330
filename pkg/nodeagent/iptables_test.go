package nodeagent

import (
	"slices"
	"strings"
	"testing"
)

// oldVersionSave is a nat table with another owner's chain and jump, and the chain and jump of an
// earlier egressgw version, which kept its rules in iptables.
const oldVersionSave = `*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:CNI-NAT - [0:0]
:EGRESSGW-POSTROUTING - [0:0]
-A POSTROUTING -m comment --comment "egressgw: egress SNAT, and no CNI masquerade for steered packets" -j EGRESSGW-POSTROUTING
-A POSTROUTING -j CNI-NAT
-A CNI-NAT -j MASQUERADE
-A EGRESSGW-POSTROUTING -m set --match-set egressgw-cluster dst -m comment --comment "egressgw: cluster destinations keep their source" -j RETURN
COMMIT
`

// TestPlanIptablesRemovesTheOldVersion: the restore input deletes the earlier version's jump and chain
// and names nothing of the other owner.
func TestPlanIptablesRemovesTheOldVersion(t *testing.T) {
	have := newKernelState()
	parseIptablesSave([]byte(oldVersionSave), have)
	want := render(&Desired{}, DefaultConfig(), links{mtu: 1450})
	plan := string(planIptables(have, want))
	for _, line := range strings.Split(plan, "\n") {
		if strings.Contains(line, "CNI-NAT") {
			t.Errorf("the plan names another owner's chain: %q", line)
		}
		if strings.HasPrefix(line, "-F ") || strings.HasPrefix(line, "-X ") || strings.HasPrefix(line, ":") {
			if !strings.Contains(line, ownChainPrefix) {
				t.Errorf("the plan flushes or declares a chain that is not ours: %q", line)
			}
		}
	}
	for _, want := range []string{
		`-D POSTROUTING -m comment --comment "egressgw: egress SNAT, and no CNI masquerade for steered packets" -j EGRESSGW-POSTROUTING`,
		"-F EGRESSGW-POSTROUTING", "-X EGRESSGW-POSTROUTING",
		`-A FORWARD -m comment --comment "egressgw: let tunnel traffic through" -j EGRESSGW-ACCEPT`,
	} {
		if !strings.Contains(plan, want+"\n") {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
}

func TestPlansAreEmptyWhenInPlace(t *testing.T) {
	d, _ := DesiredState(testView("n3", webPolicy), DefaultConfig())
	want := render(d, DefaultConfig(), links{mtu: 1450})
	if plan := planIptables(want, want); len(plan) != 0 {
		t.Errorf("iptables plan against itself: %s", plan)
	}
	if script, sets, chains := planNft(want, want); len(script) != 0 || sets != 0 || chains != 0 {
		t.Errorf("nft plan against itself (%d set operations, %d chains): %s", sets, chains, script)
	}
}

// TestPlanNftNamesOnlyOurTable: every command of a transaction, from scratch, for a pod change and
// for an uninstall, names egressgw's table and nothing else.
func TestPlanNftNamesOnlyOurTable(t *testing.T) {
	cfg := DefaultConfig()
	d, _ := DesiredState(testView("n3", webPolicy), cfg)
	want := render(d, cfg, links{mtu: 1450})
	grown := testView("n3", webPolicy)
	grown.Policies[0].Pods = append(slices.Clone(webPolicy.Pods), pod("10.244.3.99", "n3"))
	d2, _ := DesiredState(grown, cfg)
	for name, have := range map[string][2]*kernelState{
		"from scratch": {newKernelState(), want},
		"pod change":   {want, render(d2, cfg, links{mtu: 1450})},
		"uninstall":    {want, newKernelState()},
	} {
		script, _, _ := planNft(have[0], have[1])
		if len(script) == 0 {
			t.Errorf("%s: empty transaction", name)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(script)), "\n") {
			if !strings.Contains(line, " "+nftFamilyTable+" ") && !strings.HasSuffix(line, " "+nftFamilyTable) {
				t.Errorf("%s: a command that does not name table %s: %q", name, nftFamilyTable, line)
			}
		}
		if name == "pod change" && string(script) != "add element ip egressgw "+setName("s", "shop/web")+" { 10.244.3.99 }\n" {
			t.Errorf("a pod change is not one element add:\n%s", script)
		}
	}
}

func TestJumpsInPlace(t *testing.T) {
	last := jumps[0].spec()
	cases := []struct {
		got  []string
		want bool
	}{
		{[]string{"-j CNI", last}, true},
		{[]string{last}, true},
		{[]string{last, "-j CNI"}, false},
		{[]string{"-j CNI", last, last}, false},
	}
	for _, tc := range cases {
		if got := jumpsInPlace(tc.got, []string{last}); got != tc.want {
			t.Errorf("jumpsInPlace(%q) = %v, want %v", tc.got, got, tc.want)
		}
	}
}

func TestEveryRuleHasAComment(t *testing.T) {
	d, _ := DesiredState(testView("n3", webPolicy), DefaultConfig())
	k := render(d, DefaultConfig(), links{mtu: 1450})
	for name, tbl := range k.tables {
		for chain, rules := range tbl.chains {
			for _, r := range rules {
				if !strings.Contains(r, `--comment "egressgw: `) {
					t.Errorf("%s %s: rule without an egressgw comment: %s", name, chain, r)
				}
			}
		}
	}
	for name, c := range k.nft.chains {
		for _, r := range c.rules {
			if !strings.Contains(r, ` comment "egressgw: `) {
				t.Errorf("nft chain %s: rule without an egressgw comment: %s", name, r)
			}
		}
	}
}

// TestOutermostPrefixes: an nft interval set refuses nested elements, so a node IP inside a declared
// cluster range is left out of the set (the range matches it already).
func TestOutermostPrefixes(t *testing.T) {
	got := outermostPrefixes([]string{"10.0.0.0/16", "10.0.1.5", "10.0.2.0/24", "10.1.0.1", "192.168.0.0/24", "192.168.0.0/24"})
	want := "10.0.0.0/16 10.1.0.1 192.168.0.0/24"
	if strings.Join(got, " ") != want {
		t.Errorf("outermostPrefixes = %v, want %s", got, want)
	}
}
