package nodeagent

import (
	"strings"
	"testing"
)

const foreignSave = `*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:CNI-NAT - [0:0]
-A POSTROUTING -j CNI-NAT
-A POSTROUTING -m comment --comment "egressgw: old" -j EGRESSGW-POSTROUTING
-A CNI-NAT -j MASQUERADE
:EGRESSGW-OLD - [0:0]
-A EGRESSGW-OLD -j RETURN
COMMIT
`

// TestPlanIptablesTouchesOnlyOurs checks the restore input against a table with another owner's chain
// and jump, one stale jump of ours in the wrong place and one stale chain of ours.
func TestPlanIptablesTouchesOnlyOurs(t *testing.T) {
	have := newKernelState()
	parseIptablesSave([]byte(foreignSave), have)
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
		`-D POSTROUTING -m comment --comment "egressgw: old" -j EGRESSGW-POSTROUTING`,
		`-I POSTROUTING 1 -m comment --comment "egressgw: egress SNAT, and no CNI masquerade for steered packets" -j EGRESSGW-POSTROUTING`,
		"-F EGRESSGW-OLD", "-X EGRESSGW-OLD",
	} {
		if !strings.Contains(plan, want+"\n") {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
}

func TestPlanIptablesIsEmptyWhenInPlace(t *testing.T) {
	want := render(&Desired{}, DefaultConfig(), links{mtu: 1450})
	if plan := planIptables(want, want); len(plan) != 0 {
		t.Errorf("plan against itself: %s", plan)
	}
}

func TestJumpsInPlace(t *testing.T) {
	first, last := jumps[4].spec(), jumps[5].spec()
	cases := []struct {
		got  []string
		want bool
	}{
		{[]string{first, "-j CNI", last}, true},
		{[]string{"-j CNI", first, last}, false},
		{[]string{first, last, "-j CNI"}, false},
		{[]string{first, "-j CNI", last, last}, false},
	}
	for _, tc := range cases {
		if got := jumpsInPlace(tc.got, []string{first, last}); got != tc.want {
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
}
