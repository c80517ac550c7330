package nodeagent

import (
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"

	"github.com/coreos/go-iptables/iptables"
)

// The two kernels iptables can program: x_tables (iptables-legacy) and nf_tables (iptables-nft). Rules
// in one are invisible to the other, yet the kernel runs both: an ACCEPT in one does not keep a DROP
// policy of the other from dropping the packet.
const (
	IptablesLegacy = "legacy"
	IptablesNft    = "nft"
)

// iptablesTool is the command of one iptables tool ("save", "restore") in the configured backend.
func (c Config) iptablesTool(tool string) string {
	if c.Iptables == "" {
		return "iptables-" + tool
	}
	return "iptables-" + c.Iptables + "-" + tool
}

// IptablesInfo is what the node's iptables looks like: the version and backend of the iptables command
// the agent runs, and the backend the node's own rules (kubelet, kube-proxy, the CNI) are in.
type IptablesInfo struct {
	Version string // of `iptables`, e.g. "1.8.9"
	Mode    string // the backend of `iptables`: IptablesLegacy or IptablesNft
	// Node is the backend the node's rules use, "" when neither holds any; Why says what decided it.
	Node string
	Why  string
}

// kubeletHints are the chains the kubelet creates in the backend it uses: KUBE-IPTABLES-HINT (for
// exactly this question, Kubernetes 1.17+) and KUBE-KUBELET-CANARY, both in mangle.
var kubeletHints = []string{"KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY"}

// DetectIptables reads the node's iptables in the calling thread's network namespace (the host's, for a
// host-network agent): the version and backend of `iptables` (go-iptables runs `iptables --version`),
// then which backend holds the node's rules, the way the kubernetes-sigs iptables wrappers decide:
// the kubelet's hint chains first, else whichever backend has more rules in the built-in chains of
// filter, nat and mangle (egressgw's own not counted).
func DetectIptables() (IptablesInfo, error) {
	ipt, err := iptables.New()
	if err != nil {
		return IptablesInfo{}, fmt.Errorf("iptables: %w", err)
	}
	v1, v2, v3 := ipt.GetIptablesVersion()
	info := IptablesInfo{Version: fmt.Sprintf("%d.%d.%d", v1, v2, v3)}
	if info.Mode, err = iptablesMode(); err != nil {
		return info, err
	}
	backends := map[string]*iptables.IPTables{}
	for _, b := range []string{IptablesLegacy, IptablesNft} {
		if h, err := iptables.New(iptables.Path("iptables-" + b)); err == nil {
			backends[b] = h
		}
	}
	for _, hint := range kubeletHints {
		for _, b := range []string{IptablesLegacy, IptablesNft} {
			if h := backends[b]; h != nil {
				if ok, _ := h.ChainExists("mangle", hint); ok {
					info.Node, info.Why = b, fmt.Sprintf("the kubelet's %s chain is in the %s mangle table", hint, b)
					return info, nil
				}
			}
		}
	}
	counts := map[string]int{}
	for b, h := range backends {
		counts[b] = countRules(h)
	}
	switch l, n := counts[IptablesLegacy], counts[IptablesNft]; {
	case l == 0 && n == 0:
		info.Why = "no rules in either backend"
	case l > n:
		info.Node = IptablesLegacy
	default:
		info.Node = IptablesNft
	}
	if info.Node != "" {
		info.Why = fmt.Sprintf("%d rules in the legacy tables, %d in the nf_tables ones", counts[IptablesLegacy], counts[IptablesNft])
	}
	return info, nil
}

// versionModeRE finds the backend in `iptables --version` ("iptables v1.8.9 (nf_tables)"; releases
// before 1.8 print no backend: legacy). go-iptables parses the same line but keeps the mode private.
var versionModeRE = regexp.MustCompile(`\((nf_tables|legacy)\)`)

func iptablesMode() (string, error) {
	out, err := exec.Command("iptables", "--version").Output()
	if err != nil {
		return "", fmt.Errorf("iptables --version: %w", err)
	}
	if m := versionModeRE.FindSubmatch(out); m != nil && string(m[1]) == "nf_tables" {
		return IptablesNft, nil
	}
	return IptablesLegacy, nil
}

// countRules counts the rules of other owners in the built-in chains of filter, nat and mangle.
func countRules(h *iptables.IPTables) int {
	n := 0
	for table, chains := range map[string][]string{
		"filter": {"INPUT", "FORWARD", "OUTPUT"},
		"nat":    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
		"mangle": {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
	} {
		for _, chain := range chains {
			rules, err := h.List(table, chain)
			if err != nil {
				continue // the table does not exist in this backend yet
			}
			for _, r := range rules {
				if strings.HasPrefix(r, "-A ") && !strings.Contains(r, ownChainPrefix) {
					n++
				}
			}
		}
	}
	return n
}

// ChooseIptables returns the backend the datapath must use on this node: want ("" to follow the node)
// when it agrees with the node's rules, or an error that says what to change.
func (i IptablesInfo) ChooseIptables(want string) (string, error) {
	switch {
	case want != "" && want != IptablesLegacy && want != IptablesNft:
		return "", fmt.Errorf("iptables backend %q: want %q, %q or auto", want, IptablesLegacy, IptablesNft)
	case i.Node == "" && want == "":
		return "", nil // nobody else's rules: the iptables command's own backend is as good as any
	case want == "":
		return i.Node, nil
	case i.Node != "" && want != i.Node:
		return "", errors.New("the node's iptables rules are in the " + i.Node + " backend (" + i.Why + "), but the agent was told to use " +
			want + ": egressgw's accept rule for tunnel traffic would be invisible to them and a DROP policy there would still drop it; " +
			"use the node's backend (--iptables-backend=auto)")
	}
	return want, nil
}
