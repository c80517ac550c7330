package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
)

// A node's packet marks are shared by every owner of its datapath: the CNI, the service proxy, network
// policy agents, meshes. egressgw's rules only read and write their own bits, so another owner's bits on
// a packet change nothing for us; but if another owner reads or writes one of our bits, steering breaks
// (a steered packet misses its rule and leaves with the pod's address) or theirs does. CheckMarks finds
// such owners on the node before anything is programmed.

// MarkUse is one rule of another owner that reads or writes packet or connection mark bits.
type MarkUse struct {
	// Bits are the mark bits the rule reads or writes.
	Bits uint32
	// Whole is true when the rule compares or sets the whole 32-bit mark: egressgw's bits on a packet
	// that reaches it change its outcome even though Bits may not overlap them.
	Whole bool
	// Where names the rule's place ("iptables mangle PREROUTING", "ip rule 1024", "nft table ip kube-proxy").
	Where string
	// Rule is the rule as the kernel prints it.
	Rule string
}

func (u MarkUse) String() string { return fmt.Sprintf("%s: %s", u.Where, u.Rule) }

// ownerBPFMarks are bits that an owner's eBPF programs write without any iptables rule that says so;
// they are added when the owner's chains show that it runs on the node.
var ownerBPFMarks = []struct {
	chainPrefix, owner string
	bits               uint32
}{
	// Cilium carries a security identity in bits 16..31 of packets it hands to the stack, next to its
	// magic in bits 8..15. The low byte holds identity bits 16..23, which are zero but with Cluster Mesh
	// (the cluster id): docs/datapath.md tells Cluster Mesh users to move egressgw's marks.
	{"CILIUM_", "Cilium's eBPF datapath (identity in the packet mark)", 0xffff0000},
}

// markTokenRE finds every option that carries a mark value or mask in iptables-save output. MARK's
// --set-mark, --or-mark, --and-mark and --xor-mark are all printed as --set-xmark.
var markTokenRE = regexp.MustCompile(`(--set-xmark|--mark|--nfmask|--ctmask|--tproxy-mark) (0x[0-9a-fA-F]+|[0-9]+)(?:/(0x[0-9a-fA-F]+|[0-9]+))?`)

// iptablesMarks lists the mark uses of every rule in iptables-save output that is not ours.
func iptablesMarks(save string) []MarkUse {
	var out []MarkUse
	table := ""
	for line := range strings.Lines(save) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
			continue
		case !strings.HasPrefix(line, "-A "):
			continue
		}
		chain, _, _ := strings.Cut(line[3:], " ")
		if strings.HasPrefix(chain, ownChainPrefix) || strings.Contains(line, `"`+commentPrefix) {
			continue
		}
		if u, ok := ruleMarkUse(line); ok {
			u.Where = "iptables " + table + " " + chain
			out = append(out, u)
		}
	}
	return out
}

// ruleMarkUse sums up the mark options of one rule.
func ruleMarkUse(line string) (MarkUse, bool) {
	var u MarkUse
	matches := markTokenRE.FindAllStringSubmatch(line, -1)
	for _, m := range matches {
		value, mask := parseMarkNumber(m[2]), uint32(0xffffffff)
		if m[3] != "" {
			mask = parseMarkNumber(m[3])
		}
		switch {
		case m[1] == "--set-xmark" && mask == 0xffffffff:
			// Sets the whole mark to value: it only ever gives our bits value's bits, and it clears
			// them, which matters only on a path steered packets take (a warning, below).
			u.Bits |= value
		case m[1] == "--set-xmark": // mark = (mark &^ mask) ^ value: it writes both
			u.Bits |= mask | value
		case m[1] == "--nfmask" || m[1] == "--ctmask": // restore/save copy these bits between packet and connection
			u.Bits |= value
		default: // --mark and --tproxy-mark compare or write value under mask
			u.Bits |= value & mask
		}
		if m[1] != "--nfmask" && m[1] != "--ctmask" && mask == 0xffffffff {
			u.Whole = true
		}
	}
	u.Rule = line
	return u, len(matches) > 0
}

func parseMarkNumber(s string) uint32 {
	v, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		return 0
	}
	return uint32(v)
}

// ruleMarks lists the fwmark selectors of ip rules that are not ours (ours sit at two priorities).
func ruleMarks(rules []netlink.Rule, cfg Config) []MarkUse {
	var out []MarkUse
	for _, r := range rules {
		if r.Mark == 0 && r.Mask == nil {
			continue
		}
		if cfg.ownRule(r) {
			continue
		}
		mask := uint32(0xffffffff)
		if r.Mask != nil {
			mask = *r.Mask
		}
		text := fmt.Sprintf("fwmark %#x/%#x lookup %d", r.Mark, mask, r.Table)
		out = append(out, MarkUse{Bits: r.Mark & mask, Whole: mask == 0xffffffff,
			Where: fmt.Sprintf("ip rule %d", r.Priority), Rule: text})
	}
	return out
}

// iptablesNFTTables are the tables iptables-nft makes; their rules are read through iptables-save.
var iptablesNFTTables = map[string]bool{"filter": true, "nat": true, "mangle": true, "raw": true, "security": true}

var (
	nftTableRE  = regexp.MustCompile(`^table (\S+) (\S+) \{`)
	nftNumberRE = regexp.MustCompile(`0x[0-9a-fA-F]+`)
)

// nftMarks lists the mark uses in `nft list ruleset` output of tables that neither iptables-nft nor
// egressgw owns (kube-proxy's nftables mode, for one). Every hexadecimal constant after "mark" on a rule's line
// counts; an AND mask with more than half of the bits set stands for the bits it clears.
func nftMarks(ruleset string) []MarkUse {
	var out []MarkUse
	table, skip := "", false
	for line := range strings.Lines(ruleset) {
		line = strings.TrimSpace(line)
		if m := nftTableRE.FindStringSubmatch(line); m != nil {
			table = m[1] + " " + m[2]
			skip = (m[1] == "ip" || m[1] == "ip6" || m[1] == "inet") && iptablesNFTTables[m[2]] ||
				m[1]+" "+m[2] == nftFamilyTable
			continue
		}
		_, after, ok := strings.Cut(line, "mark")
		if skip || !ok || table == "" {
			continue
		}
		var u MarkUse
		for _, n := range nftNumberRE.FindAllString(after, -1) {
			v := parseMarkNumber(n)
			if bits.OnesCount32(v) > 16 {
				v = ^v
			}
			u.Bits |= v
		}
		if u.Bits != 0 {
			u.Where, u.Rule = "nft table "+table, line
			out = append(out, u)
		}
	}
	return out
}

// bpfMarks adds the bits of owners whose eBPF programs write marks, when their chains are on the node.
func bpfMarks(save string) []MarkUse {
	var out []MarkUse
	for _, o := range ownerBPFMarks {
		if strings.Contains(save, ":"+o.chainPrefix) {
			out = append(out, MarkUse{Bits: o.bits, Where: o.owner,
				Rule: fmt.Sprintf("chains %s* present; its programs write mark bits %#x", o.chainPrefix, o.bits)})
		}
	}
	return out
}

// markConflicts refuses every use that shares a bit with ours, naming the rule, and returns the uses
// that compare or set the whole mark without sharing a bit, which deserve a warning only: they matter
// only if steered packets traverse them.
func markConflicts(uses []MarkUse, ours uint32) (wholeMark []MarkUse, err error) {
	var errs []error
	for _, u := range uses {
		switch {
		case u.Bits&ours != 0:
			errs = append(errs, fmt.Errorf("mark bits %#x are already used by %s", u.Bits&ours, u))
		case u.Whole:
			wholeMark = append(wholeMark, u)
		}
	}
	if len(errs) > 0 {
		errs = append(errs, fmt.Errorf("egressgw's marks (steer mask and reply mark) %#x must be clear of them: choose free bits", ours))
	}
	return wholeMark, errors.Join(errs...)
}

// CheckMarks reads the node's iptables rules, ip rules and nftables ruleset and refuses a configuration
// whose marks another owner's rule reads or writes, naming that rule. It returns the rules that compare
// or set the whole mark, for the caller to log. The agent calls it once at start, before the first Apply.
func (dp *Datapath) CheckMarks(ctx context.Context) ([]MarkUse, error) {
	save, err := dp.exec.Run(ctx, nil, dp.cfg.iptablesTool("save"))
	if err != nil {
		return nil, fmt.Errorf("read the node's iptables rules: %w", err)
	}
	uses := append(iptablesMarks(string(save)), bpfMarks(string(save))...)
	rules, err := dp.nl.RuleList(netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("read the node's ip rules: %w", err)
	}
	uses = append(uses, ruleMarks(rules, dp.cfg)...)
	if ruleset, err := dp.exec.Run(ctx, nil, "nft", "list", "ruleset"); err == nil {
		uses = append(uses, nftMarks(string(ruleset))...)
	} else if !errors.Is(err, exec.ErrNotFound) {
		// Without nft there is no nftables-only owner to read; a failing nft is worth a word.
		dp.log.Info("nftables ruleset not read; mark check covers iptables and ip rules only", "err", err)
	}
	whole, err := markConflicts(uses, dp.cfg.SteerMask|dp.cfg.ReplyMark)
	if err != nil {
		return whole, fmt.Errorf("datapath marks collide with other rules on the node: %w", err)
	}
	return slices.Clip(whole), nil
}
