package nodeagent

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
)

// iptablesTables are the tables we own chains in, in the order we write them.
var iptablesTables = []string{"mangle", "nat", "filter"}

// builtinChains are the chains we place jumps in, per table.
var builtinChains = map[string]bool{"PREROUTING": true, "FORWARD": true, "POSTROUTING": true, "INPUT": true}

// observeIptables reads our chains, and the built-in chains we jump from, out of one iptables-save.
func (dp *Datapath) observeIptables(ctx context.Context, k *kernelState) error {
	out, err := dp.exec.Run(ctx, nil, dp.cfg.iptablesTool("save"))
	if err != nil {
		return err
	}
	parseIptablesSave(out, k)
	return nil
}

// parseIptablesSave keeps, per table we care about, the rules of our chains and of the built-in chains.
func parseIptablesSave(out []byte, k *kernelState) {
	var t *tableState
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "*"):
			t = nil
			if slices.Contains(iptablesTables, line[1:]) {
				t = k.table(line[1:])
			}
		case t == nil:
		case strings.HasPrefix(line, ":"+ownChainPrefix):
			name, _, _ := strings.Cut(line[1:], " ")
			t.chains[name] = t.chains[name][:0:0]
		case strings.HasPrefix(line, "-A "):
			chain, spec, _ := strings.Cut(line[3:], " ")
			if builtinChains[chain] || strings.HasPrefix(chain, ownChainPrefix) {
				t.chains[chain] = append(t.chains[chain], spec)
			}
		}
	}
}

// planIptables returns the iptables-restore --noflush input that turns have into want, or nil when they
// agree. Only our chains are rewritten (a chain declaration flushes just that chain), and in the
// built-in chains only our jump rules are deleted or inserted; other owners' rules are never named.
// One restore per table is atomic, so a packet sees either the old chain or the new one.
func planIptables(have, want *kernelState) []byte {
	var buf bytes.Buffer
	for _, name := range iptablesTables {
		h, w := have.table(name), want.table(name)
		var body []string
		body = append(body, rewriteOwnChains(h, w)...)
		body = append(body, fixJumps(h, w)...)
		body = append(body, dropStaleChains(h, w)...)
		if len(body) > 0 {
			fmt.Fprintf(&buf, "*%s\n%s\nCOMMIT\n", name, strings.Join(body, "\n"))
		}
	}
	return buf.Bytes()
}

// rewriteOwnChains declares (and so flushes) every wanted chain of ours that is missing or differs, and
// appends its rules.
func rewriteOwnChains(h, w *tableState) []string {
	var decl, rules []string
	for _, chain := range sortedKeys(w.chains) {
		if !strings.HasPrefix(chain, ownChainPrefix) {
			continue
		}
		got, exists := h.chains[chain]
		if exists && slices.Equal(got, w.chains[chain]) {
			continue
		}
		decl = append(decl, ":"+chain+" - [0:0]")
		for _, r := range w.chains[chain] {
			rules = append(rules, "-A "+chain+" "+r)
		}
	}
	return append(decl, rules...)
}

// fixJumps makes our jumps in each built-in chain exactly the wanted ones, in place: first-position
// jumps at the top in order, last-position jumps at the bottom. When that already holds nothing is
// written; otherwise every jump of ours there is deleted and the wanted ones are put back.
func fixJumps(h, w *tableState) []string {
	var out []string
	for _, chain := range sortedKeys(builtinChains) {
		got, wanted := h.chains[chain], ownJumps(w.chains[chain])
		if jumpsInPlace(got, w.chains[chain]) {
			continue
		}
		for _, r := range ownJumps(got) {
			out = append(out, "-D "+chain+" "+r)
		}
		first, last := splitJumps(wanted)
		for i := len(first) - 1; i >= 0; i-- {
			out = append(out, "-I "+chain+" 1 "+first[i])
		}
		for _, r := range last {
			out = append(out, "-A "+chain+" "+r)
		}
	}
	return out
}

// jumpsInPlace reports whether got has exactly the wanted jumps of ours, the first ones on top and the
// last ones at the bottom.
func jumpsInPlace(got, want []string) bool {
	if !slices.Equal(ownJumps(got), ownJumps(want)) {
		return false
	}
	first, last := splitJumps(ownJumps(want))
	return len(got) >= len(first)+len(last) &&
		slices.Equal(got[:len(first)], first) && slices.Equal(got[len(got)-len(last):], last)
}

func ownJumps(rules []string) []string {
	var out []string
	for _, r := range rules {
		if strings.Contains(r, "-j "+ownChainPrefix) {
			out = append(out, r)
		}
	}
	return out
}

// splitJumps separates first-position from last-position jumps, by the jump table.
func splitJumps(specs []string) (first, last []string) {
	for _, s := range specs {
		if isLastJump(s) {
			last = append(last, s)
		} else {
			first = append(first, s)
		}
	}
	return first, last
}

func isLastJump(spec string) bool {
	for _, j := range jumps {
		if j.last && j.spec() == spec {
			return true
		}
	}
	return false
}

// dropStaleChains flushes and deletes chains of ours that are no longer wanted (their jumps are already
// deleted by fixJumps earlier in the same transaction).
func dropStaleChains(h, w *tableState) []string {
	var flush, del []string
	for _, chain := range sortedKeys(h.chains) {
		if _, ok := w.chains[chain]; ok || !strings.HasPrefix(chain, ownChainPrefix) {
			continue
		}
		flush = append(flush, "-F "+chain)
		del = append(del, "-X "+chain)
	}
	return append(flush, del...)
}

// restoreIptables feeds the plan to iptables-restore without flushing anything else.
func (dp *Datapath) restoreIptables(ctx context.Context, plan []byte) error {
	if len(plan) == 0 {
		return nil
	}
	if _, err := dp.exec.Run(ctx, plan, dp.cfg.iptablesTool("restore"), "--noflush", "--wait"); err != nil {
		return fmt.Errorf("iptables-restore: %w\ninput:\n%s", err, plan)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
