package nodeagent

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
)

// egressgw's netfilter rules live in one nftables table of its own, created, diffed and deleted as a
// whole. Its base chains sit at hook priorities just before the iptables (and iptables-nft) tables, so
// rule order in the built-in chains that CNIs share and keep rewriting no longer matters: marks set in
// prerouting persist through the mangle table, a NAT binding set up in postrouting is final for the
// connection, and a drop in forward or input is final whatever another owner accepts.
const nftTableName = "egressgw"

// nftFamilyTable is how nft commands name the table.
const nftFamilyTable = "ip " + nftTableName

// nftBaseChains are the table's chains and their hooks, in the order they are written.
var nftBaseChains = []struct{ name, header string }{
	// After conntrack (-200), before the mangle table (-150).
	{"prerouting", "type filter hook prerouting priority -160; policy accept;"},
	// srcnat - 1: the first NAT chain the kernel consults for a new connection.
	{"postrouting", "type nat hook postrouting priority 99; policy accept;"},
	// Before the filter table (0).
	{"forward", "type filter hook forward priority -10; policy accept;"},
	{"input", "type filter hook input priority -10; policy accept;"},
}

// nftTable is egressgw's table: its chains (sets are kernelState.sets).
type nftTable struct {
	chains map[string]*nftChain
}

// nftChain is one chain: its base-chain header and its rules, as `nft -y list` prints them with the
// counters' values removed.
type nftChain struct {
	header string
	rules  []string
}

// renderNft fills the table's chains.
func renderNft(k *kernelState, d *Desired, cfg Config, mtu int) {
	rules := map[string][]string{
		"prerouting":  preroutingRules(d, cfg),
		"postrouting": postroutingRules(d, cfg),
		"forward":     forwardRules(d, cfg, mtu),
		"input":       inputRules(cfg),
	}
	k.nft = &nftTable{chains: map[string]*nftChain{}}
	for _, c := range nftBaseChains {
		k.nft.chains[c.name] = &nftChain{header: c.header, rules: rules[c.name]}
	}
}

// nftSetDecl is the type (and flags) of a set in nft syntax, from the ipset-style type of IPSet.
func nftSetDecl(typ string) string {
	if typ == "hash:net" {
		return "type ipv4_addr; flags interval;"
	}
	return "type ipv4_addr;"
}

// observeNft reads egressgw's table, if the node has it, with one `nft list tables` and one listing.
func (dp *Datapath) observeNft(ctx context.Context, k *kernelState) error {
	tables, err := dp.exec.Run(ctx, nil, "nft", "list", "tables", "ip")
	if errors.Is(err, exec.ErrNotFound) {
		return fmt.Errorf("the datapath needs the nft tool (Debian package nftables, 1.0.6 or later) on the agent's PATH: %w", err)
	}
	if err != nil {
		return fmt.Errorf("list nftables tables: %w", err)
	}
	if !slices.Contains(strings.Split(string(tables), "\n"), "table "+nftFamilyTable) {
		return nil
	}
	out, err := dp.exec.Run(ctx, nil, "nft", "-y", "list", "table", "ip", nftTableName)
	if err != nil {
		return fmt.Errorf("read nftables table %s: %w", nftFamilyTable, err)
	}
	return parseNftTable(out, k)
}

var nftCounterRE = regexp.MustCompile(`counter packets \d+ bytes \d+`)

// parseNftTable reads `nft -y list table` output into k: the chains and the sets with their members.
func parseNftTable(out []byte, k *kernelState) error {
	k.nft = &nftTable{chains: map[string]*nftChain{}}
	var (
		chain    *nftChain
		set      *setState
		elements *strings.Builder
	)
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case elements != nil:
			elements.WriteString(" " + line)
			if strings.HasSuffix(line, "}") {
				set.members = parseNftElements(elements.String())
				elements = nil
			}
		case line == "" || strings.HasPrefix(line, "table "):
		case line == "}":
			chain, set = nil, nil
		case strings.HasPrefix(line, "set ") && strings.HasSuffix(line, " {"):
			set = &setState{typ: "hash:ip"}
			k.sets[strings.TrimSuffix(strings.TrimPrefix(line, "set "), " {")] = set
		case strings.HasPrefix(line, "chain ") && strings.HasSuffix(line, " {"):
			chain = &nftChain{}
			k.nft.chains[strings.TrimSuffix(strings.TrimPrefix(line, "chain "), " {")] = chain
		case set != nil:
			parseSetLine(set, line, &elements)
		case chain != nil && strings.HasPrefix(line, "type ") && strings.Contains(line, " hook "):
			chain.header = line
		case chain != nil:
			chain.rules = append(chain.rules, nftCounterRE.ReplaceAllString(line, "counter"))
		default:
			return fmt.Errorf("nft list table %s: unexpected line %q", nftFamilyTable, line)
		}
	}
	for _, s := range k.sets {
		slices.Sort(s.members)
	}
	return sc.Err()
}

// parseSetLine reads one line of a set's body. A set that is not one egressgw makes (another type, other
// flags) gets a type no wanted set has, so the diff rebuilds it.
func parseSetLine(set *setState, line string, elements **strings.Builder) {
	switch {
	case line == "type ipv4_addr":
	case line == "flags interval":
		set.typ = "hash:net"
	case strings.HasPrefix(line, "elements = {"):
		b := &strings.Builder{}
		b.WriteString(strings.TrimPrefix(line, "elements = "))
		if strings.HasSuffix(line, "}") {
			set.members = parseNftElements(b.String())
			return
		}
		*elements = b
	default:
		set.typ = "foreign: " + line
	}
}

// parseNftElements splits "{ a, b, c }" into its members.
func parseNftElements(s string) []string {
	s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "{"), "}")
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// planNft returns the `nft -f` script that turns have's table into want's in one transaction, the
// number of set operations in it (sets created or deleted, members added or deleted) and the number of
// chains (or the table) it writes. Nothing outside egressgw's table is named. Only what differs is
// written: a pod change is one `add element` or `delete element` line. A set whose type changed, or a
// chain whose hook changed, cannot be replaced while rules use it, so then the whole table is deleted
// and created again in the same transaction, which packets see as one change.
func planNft(have, want *kernelState) (script []byte, setOps, chains int) {
	var b strings.Builder
	switch {
	case want.nft == nil && have.nft == nil:
		return nil, 0, 0
	case want.nft == nil:
		return []byte("delete table " + nftFamilyTable + "\n"), len(have.sets), 1
	case have.nft == nil:
		b.WriteString("add table " + nftFamilyTable + "\n")
		chains++
		have = newKernelState()
		have.nft = &nftTable{chains: map[string]*nftChain{}}
	case needsRebuild(have, want):
		b.WriteString("delete table " + nftFamilyTable + "\nadd table " + nftFamilyTable + "\n")
		chains++
		have = newKernelState()
		have.nft = &nftTable{chains: map[string]*nftChain{}}
	}
	setOps += planNftSets(&b, have, want)
	chains += planNftChains(&b, have, want)
	for _, name := range sortedKeys(have.sets) {
		if _, ok := want.sets[name]; !ok {
			fmt.Fprintf(&b, "delete set %s %s\n", nftFamilyTable, name)
			setOps++
		}
	}
	return []byte(b.String()), setOps, chains
}

// needsRebuild reports a set of ours with another type, or a chain of ours with another hook.
func needsRebuild(have, want *kernelState) bool {
	for name, h := range have.sets {
		if w, ok := want.sets[name]; ok && w.typ != h.typ {
			return true
		}
	}
	for name, h := range have.nft.chains {
		if w, ok := want.nft.chains[name]; ok && w.header != h.header {
			return true
		}
	}
	return false
}

// nftElementsPerLine bounds one `add element` line.
const nftElementsPerLine = 1000

func planNftSets(b *strings.Builder, have, want *kernelState) int {
	ops := 0
	for _, name := range sortedKeys(want.sets) {
		w, h := want.sets[name], have.sets[name]
		if h == nil {
			fmt.Fprintf(b, "add set %s %s { %s }\n", nftFamilyTable, name, nftSetDecl(w.typ))
			ops++
			h = &setState{}
		}
		var adds, dels []string
		mergeDiff(h.members, w.members, strings.Compare,
			func(m string) { adds = append(adds, m) }, func(m string) { dels = append(dels, m) })
		writeElements(b, "add", name, adds)
		writeElements(b, "delete", name, dels)
		ops += len(adds) + len(dels)
	}
	return ops
}

func writeElements(b *strings.Builder, verb, set string, members []string) {
	for chunk := range slices.Chunk(members, nftElementsPerLine) {
		fmt.Fprintf(b, "%s element %s %s { %s }\n", verb, nftFamilyTable, set, strings.Join(chunk, ", "))
	}
}

// planNftChains writes every wanted chain that is missing or differs (flushed, then its rules added)
// and deletes chains of ours that are no longer wanted; it returns how many chains it wrote.
func planNftChains(b *strings.Builder, have, want *kernelState) int {
	n := 0
	for _, c := range nftBaseChains {
		w, h := want.nft.chains[c.name], have.nft.chains[c.name]
		if h != nil && slices.Equal(h.rules, w.rules) {
			continue
		}
		if h == nil {
			fmt.Fprintf(b, "add chain %s %s { %s }\n", nftFamilyTable, c.name, w.header)
		} else {
			fmt.Fprintf(b, "flush chain %s %s\n", nftFamilyTable, c.name)
		}
		for _, r := range w.rules {
			fmt.Fprintf(b, "add rule %s %s %s\n", nftFamilyTable, c.name, r)
		}
		n++
	}
	for _, name := range sortedKeys(have.nft.chains) {
		if _, ok := want.nft.chains[name]; !ok {
			fmt.Fprintf(b, "flush chain %s %s\ndelete chain %s %s\n", nftFamilyTable, name, nftFamilyTable, name)
			n++
		}
	}
	return n
}

// runNft runs a script as one nft transaction: all of it or nothing.
func (dp *Datapath) runNft(ctx context.Context, script []byte) error {
	if len(script) == 0 {
		return nil
	}
	if _, err := dp.exec.Run(ctx, script, "nft", "-f", "-"); err != nil {
		return fmt.Errorf("nft -f: %w\ninput:\n%s", err, truncateScript(script))
	}
	return nil
}

// truncateScript keeps an error message bounded however large the transaction was.
func truncateScript(script []byte) []byte {
	const max = 4096
	if len(script) <= max {
		return script
	}
	return append(script[:max:max], []byte("\n... (truncated)")...)
}
