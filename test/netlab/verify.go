package netlab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// ClusterRanges are the ranges an operator declares as cluster ranges under the lab's profile: the CNI's
// (the VPC for VPC-addressed pods, the pod ranges otherwise), the service range and the node subnet.
func (t *Topology) ClusterRanges() []netip.Prefix {
	out := []netip.Prefix{}
	for _, p := range append(t.Profile.CNI.clusterRanges(), ServiceCIDR, VPCSubnet) {
		if !slices.ContainsFunc(out, func(q netip.Prefix) bool { return q.Overlaps(p) && q.Bits() <= p.Bits() }) {
			out = append(out, p)
		}
	}
	return out
}

// Marks lists every fwmark and connmark the profile's CNI and service proxy use, with the rule that
// uses each.
func (t *Topology) Marks() []Mark { return append(t.Profile.CNI.marks(), t.Profile.Proxy.marks()...) }

// SNATRule is the rule of the CNI that SNATs ordinary pod traffic leaving the cluster.
func (t *Topology) SNATRule() SNATRule { return t.Profile.CNI.snatRule() }

// OrdinarySource is the source address the echo server sees for traffic of pod p to dst that egressgw
// does not touch: the node's address when the CNI masquerades it, the pod's own otherwise.
func (t *Topology) OrdinarySource(p *Pod, dst netip.Addr) netip.Addr {
	return t.SourceLeaving(p.Node, p.IP, dst)
}

// SourceLeaving is the source a packet from src to dst has after the CNI of n, which it leaves: n's
// address where the CNI masquerades it, src otherwise (a source the cloud then drops unless it is n's).
func (t *Topology) SourceLeaving(n *Node, src, dst netip.Addr) netip.Addr {
	if t.Profile.CNI.masquerades(n, src, dst) {
		return n.IP
	}
	return src
}

// SNATPackets is the packet counter of the CNI's SNAT rule on n (0 when it has none).
func (t *Topology) SNATPackets(ctx context.Context, n *Node) (int, error) {
	if t.SNATRule().Chain == "" {
		return 0, nil // the CNI SNATs nothing on the node (the AWS VPC CNI with external SNAT)
	}
	out, err := n.NS.Run(ctx, nil, "iptables-save", "-c", "-t", "nat")
	if err != nil {
		return 0, err
	}
	r := t.SNATRule()
	re := regexp.MustCompile(`(?m)^\[(\d+):\d+\] -A ` + regexp.QuoteMeta(r.Chain) + ` .*--comment "?` + regexp.QuoteMeta(r.Comment) + `"? .*$`)
	m := re.FindAllStringSubmatch(string(out), -1)
	if len(m) == 0 {
		return 0, fmt.Errorf("%s: no rule in nat %s with comment %q:\n%s", n.Name, r.Chain, r.Comment, out)
	}
	total := 0
	for _, x := range m {
		v, _ := strconv.Atoi(x[1])
		total += v
	}
	return total, nil
}

// Declared is everything the profile programmed on n, one part per owner and step: its service proxy,
// its CNI, and the CNI's rules for each of n's pods.
func (t *Topology) Declared(n *Node) []Declared {
	parts := []Declared{t.Profile.Proxy.node(n), t.Profile.CNI.node(n)}
	for _, p := range n.Pods {
		parts = append(parts, t.Profile.CNI.pod(p))
	}
	return parts
}

// Verify compares n's kernel state with what the profile declares for it: every declared iptables rule in
// its chain, in order (other owners' rules may sit between them), every declared ip rule at its priority
// and none of the deleted ones, every sysctl's value, and the nft table's declared lines. It reports all
// differences at once.
func (t *Topology) Verify(ctx context.Context, n *Node) error {
	var errs []error
	for _, d := range t.Declared(n) {
		errs = append(errs, t.verifyTables(ctx, n, d), verifyRules(ctx, n, d), verifySysctls(n, d))
		if d.NFT != "" {
			errs = append(errs, verifyNFT(ctx, n, d))
		}
	}
	return errors.Join(errs...)
}

func (t *Topology) verifyTables(ctx context.Context, n *Node, d Declared) error {
	var errs []error
	for _, table := range sortedKeys(d.Tables) {
		out, err := n.NS.Run(ctx, nil, "iptables-save", "-t", table)
		if err != nil {
			return err
		}
		saved := chainsOf(string(out))
		for chain, want := range chainsOf(strings.Join(d.Tables[table], "\n")) {
			got, ok := saved[chain]
			if !ok {
				errs = append(errs, fmt.Errorf("%s: %s chain %s is missing", n.Name, table, chain))
				continue
			}
			if missing := notSubsequence(want, got); missing != "" {
				errs = append(errs, fmt.Errorf("%s: %s chain %s lacks (in order) %q; it has:\n%s",
					n.Name, table, chain, missing, strings.Join(got, "\n")))
			}
		}
	}
	return errors.Join(errs...)
}

// chainsOf groups iptables-save lines by chain: ":CHAIN ..." declares one, "-A CHAIN ..." adds a rule.
func chainsOf(save string) map[string][]string {
	out := map[string][]string{}
	for _, l := range strings.Split(save, "\n") {
		switch {
		case strings.HasPrefix(l, ":"):
			c := strings.Fields(l[1:])[0]
			if _, ok := out[c]; !ok {
				out[c] = []string{}
			}
		case strings.HasPrefix(l, "-A "):
			c := chainOf(l)
			out[c] = append(out[c], l)
		}
	}
	return out
}

// notSubsequence returns the first line of want that is not found, in order, in got ("" if all are).
func notSubsequence(want, got []string) string {
	i := 0
	for _, w := range want {
		for i < len(got) && got[i] != w {
			i++
		}
		if i == len(got) {
			return w
		}
		i++
	}
	return ""
}

func verifyRules(ctx context.Context, n *Node, d Declared) error {
	out, err := n.NS.Run(ctx, nil, "ip", "rule", "show")
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		prio, rest, _ := strings.Cut(l, ":")
		have[prio+":"+strings.Join(strings.Fields(rest), " ")] = true
	}
	var errs []error
	for _, r := range d.Rules {
		if !have[fmt.Sprintf("%d:%s", r.Priority, r.Shown)] {
			errs = append(errs, fmt.Errorf("%s: ip rule %d: %s is missing:\n%s", n.Name, r.Priority, r.Shown, out))
		}
	}
	for _, r := range d.DeleteRules {
		if have[fmt.Sprintf("%d:%s", r.Priority, r.Shown)] {
			errs = append(errs, fmt.Errorf("%s: ip rule %d: %s should be gone:\n%s", n.Name, r.Priority, r.Shown, out))
		}
	}
	return errors.Join(errs...)
}

func verifySysctls(n *Node, d Declared) error {
	var errs []error
	for _, s := range d.Sysctls {
		key, want, _ := strings.Cut(s, "=")
		var got string
		err := n.NS.Do(func() (err error) { got, err = readSysctl(key); return err })
		if err != nil || got != want {
			errs = append(errs, fmt.Errorf("%s: sysctl %s = %q (err %v), want %s", n.Name, key, got, err, want))
		}
	}
	return errors.Join(errs...)
}

func verifyNFT(ctx context.Context, n *Node, d Declared) error {
	out, err := n.NS.Run(ctx, nil, "nft", "list", "table", "ip", d.NFTTable)
	if err != nil {
		return err
	}
	var errs []error
	for _, want := range d.NFTExpect {
		if !strings.Contains(string(out), want) {
			errs = append(errs, fmt.Errorf("%s: nft table ip %s lacks %q:\n%s", n.Name, d.NFTTable, want, out))
		}
	}
	return errors.Join(errs...)
}
