package nodeagent

import (
	"context"
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/egressgw/egressgw/test/netlab"
)

func requireIptablesLegacy(t *testing.T) {
	t.Helper()
	requireRoot(t)
	if _, err := exec.LookPath("iptables-legacy"); errors.Is(err, exec.ErrNotFound) {
		t.Skip("needs iptables-legacy (Debian package iptables) to program the legacy tables")
	}
}

// TestDetectIptables: in a node namespace, DetectIptables finds the kubelet's hint chain in the legacy
// tables, or counts other owners' rules in each backend, and ChooseIptables follows the node or refuses
// a backend the node's rules do not use, saying why.
func TestDetectIptables(t *testing.T) {
	requireIptablesLegacy(t)
	ctx := context.Background()
	cases := []struct {
		name     string
		rules    [][]string
		wantNode string
		why      string
	}{
		{"nobody's rules", nil, "", "no rules"},
		{"kubelet hint in legacy", [][]string{{"iptables-legacy", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT"},
			// more nf_tables rules than legacy ones: the hint decides, not the count
			{"iptables-nft", "-A", "FORWARD", "-j", "ACCEPT"}, {"iptables-nft", "-A", "INPUT", "-j", "ACCEPT"}},
			IptablesLegacy, "KUBE-IPTABLES-HINT chain is in the legacy mangle table"},
		{"only nf_tables rules", [][]string{{"iptables-nft", "-t", "nat", "-A", "POSTROUTING", "-j", "MASQUERADE"},
			{"iptables-legacy", "-N", "EGRESSGW-ACCEPT"}, {"iptables-legacy", "-A", "FORWARD", "-j", "EGRESSGW-ACCEPT"}},
			IptablesNft, "0 rules in the legacy tables, 1 in the nf_tables ones"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns, err := netlab.NewNamespace(ctx, netlab.RandomPrefix()+"-ipt")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = ns.Close() })
			if err := ns.RunLines(ctx, tc.rules...); err != nil {
				t.Fatal(err)
			}
			var info IptablesInfo
			if err := ns.Do(func() (err error) { info, err = DetectIptables(); return err }); err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", info)
			if info.Node != tc.wantNode || !strings.Contains(info.Why, tc.why) {
				t.Errorf("node backend %q (%s), want %q (%s)", info.Node, info.Why, tc.wantNode, tc.why)
			}
			if info.Version == "" || info.Version == "0.0.0" || (info.Mode != IptablesNft && info.Mode != IptablesLegacy) {
				t.Errorf("iptables version %q mode %q", info.Version, info.Mode)
			}
			if got, err := info.ChooseIptables(""); err != nil || got != tc.wantNode {
				t.Errorf("auto chose %q (%v), want %q", got, err, tc.wantNode)
			}
			if tc.wantNode == IptablesLegacy {
				_, err := info.ChooseIptables(IptablesNft)
				if err == nil || !strings.Contains(err.Error(), "rules are in the legacy backend") || !strings.Contains(err.Error(), "--iptables-backend=auto") {
					t.Errorf("nft beside a legacy node: %v, want a refusal that says what to change", err)
				}
			}
		})
	}
	if _, err := (IptablesInfo{}).ChooseIptables("xtables"); err == nil || !strings.Contains(err.Error(), `"xtables"`) {
		t.Errorf("bad backend name: %v", err)
	}
}

// TestGatewayBesideLegacyForwardDrop: the gateway node's rules are in the legacy backend, whose filter
// FORWARD policy is DROP (kube-proxy and many CNIs set it). With the datapath's iptables rule in the
// backend DetectIptables chose, the steered pod leaves as the egress IP; in the nf_tables backend (the
// default iptables of the agent's image) its accept was invisible to the legacy chain and the gateway
// dropped the tunnel traffic.
func TestGatewayBesideLegacyForwardDrop(t *testing.T) {
	requireIptablesLegacy(t)
	l := newLab(t, netlab.Profile{}, 2, 1)
	ctx := context.Background()
	gw := l.node(2)
	if err := gw.NS.RunLines(ctx,
		[]string{"iptables-legacy", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT"},
		[]string{"iptables-legacy", "-P", "FORWARD", "DROP"},
	); err != nil {
		t.Fatal(err)
	}
	var info IptablesInfo
	if err := gw.NS.Do(func() (err error) { info, err = DetectIptables(); return err }); err != nil {
		t.Fatal(err)
	}
	cfg := l.cfg
	var err error
	if cfg.Iptables, err = info.ChooseIptables(""); err != nil {
		t.Fatal(err)
	}
	if l.dps[gw.Name], err = New(cfg, gw.NS.NL, gw.NS, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	if err := l.topo.RouteToNode(egressIP, gw); err != nil {
		t.Fatal(err)
	}
	sel := l.pod(1, 1)
	l.apply(l.view(PolicyView{Key: "a/steered", Pods: podRefs(sel), EgressIP: egressIP, GatewayNode: gw.Name}))
	l.expectSource(sel.NS, "tcp", serverTCP, egressIP, "steered pod through a gateway whose legacy FORWARD policy is DROP")
	save, err := gw.NS.Run(ctx, nil, "iptables-legacy-save", "-t", "filter")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^-A FORWARD .*-j EGRESSGW-ACCEPT$`).Match(save) {
		t.Errorf("egressgw's accept is not in the legacy FORWARD chain:\n%s", save)
	}
}
