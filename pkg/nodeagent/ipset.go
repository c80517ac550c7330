package nodeagent

import (
	"errors"
	"net/netip"

	"bufio"
	"bytes"
	"context"
	"fmt"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"slices"
	"strings"
)

// setMaxElem bounds every set of ours; a policy may select this many pods.
const setMaxElem = 1 << 20

// observeSets reads our ipsets (names starting with egressgw-) from one `ipset save`.
func (dp *Datapath) observeSets(ctx context.Context, k *kernelState) error {
	out, err := dp.exec.Run(ctx, nil, "ipset", "save")
	if err != nil {
		return err
	}
	return parseIPSetSave(out, k)
}

func parseIPSetSave(out []byte, k *kernelState) error {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || !strings.HasPrefix(f[1], ownSetPrefix) {
			continue
		}
		switch f[0] {
		case "create":
			k.sets[f[1]] = &setState{typ: f[2]}
		case "add":
			s, ok := k.sets[f[1]]
			if !ok {
				return fmt.Errorf("ipset save: member of %s before its create line", f[1])
			}
			s.members = append(s.members, f[2])
		}
	}
	for _, s := range k.sets {
		slices.Sort(s.members)
	}
	return sc.Err()
}

// setOp is one line of an ipset restore script: "create", "add" or "del".
type setOp struct {
	verb, set, arg string
}

func (o setOp) String() string { return o.verb + " " + o.set + " " + o.arg }

// planSets returns the operations that create missing sets and add and delete members so that have
// matches want. Sets that are no longer wanted are left for planSetDestroy, which runs after the
// iptables rules that use them are gone. Adds come before deletes, per set.
func planSets(have, want *kernelState) ([]setOp, error) {
	var ops []setOp
	for _, name := range sortedKeys(want.sets) {
		w, h := want.sets[name], have.sets[name]
		if h != nil && h.typ != w.typ {
			return nil, fmt.Errorf("ipset %s is %s, want %s: remove it (egressgw uninstall) and resync", name, h.typ, w.typ)
		}
		if h == nil {
			ops = append(ops, setOp{"create", name, fmt.Sprintf("%s family inet maxelem %d", w.typ, setMaxElem)})
			h = &setState{}
		}
		ops = appendMemberDiff(ops, name, h.members, w.members)
	}
	return ops, nil
}

// appendMemberDiff appends the adds, then the deletes, that turn the sorted have into the sorted want.
func appendMemberDiff(ops []setOp, name string, have, want []string) []setOp {
	if slices.Equal(have, want) {
		return ops
	}
	var dels []setOp
	mergeDiff(have, want, strings.Compare,
		func(m string) { ops = append(ops, setOp{"add", name, m}) },
		func(m string) { dels = append(dels, setOp{"del", name, m}) })
	return append(ops, dels...)
}

// script renders operations as `ipset restore` input.
func script(ops []setOp) []byte {
	var buf bytes.Buffer
	for _, o := range ops {
		buf.WriteString(o.String())
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// netlinkSetOpsMax is how many member changes go through netlink calls instead of one `ipset restore`:
// below it, the calls are cheaper than starting a process.
const netlinkSetOpsMax = 64

// applySetOps runs the operations: a few member changes (a pod came or went) as netlink calls, anything
// larger or any create in one `ipset restore`.
func (dp *Datapath) applySetOps(ctx context.Context, ops []setOp) error {
	if len(ops) > netlinkSetOpsMax || slices.ContainsFunc(ops, func(o setOp) bool { return o.verb == "create" }) {
		return dp.restoreSets(ctx, script(ops))
	}
	for _, o := range ops {
		if err := dp.memberOp(o); err != nil {
			return err
		}
	}
	return nil
}

// memberOp adds or deletes one member through netlink; an add of a present member and a delete of an
// absent one succeed, like `ipset -exist`.
func (dp *Datapath) memberOp(o setOp) error {
	p, err := netip.ParsePrefix(o.arg)
	if err != nil {
		addr, aerr := netip.ParseAddr(o.arg)
		if aerr != nil {
			return fmt.Errorf("ipset %s member %q: %w", o.set, o.arg, err)
		}
		p = netip.PrefixFrom(addr, 32)
	}
	entry := &netlink.IPSetEntry{IP: p.Addr().AsSlice(), CIDR: uint8(p.Bits()), Replace: true}
	if !strings.Contains(o.arg, "/") {
		entry.CIDR = 0
	}
	if o.verb == "add" {
		err = dp.nl.IpsetAdd(o.set, entry)
	} else {
		err = dp.nl.IpsetDel(o.set, entry)
	}
	if err != nil && !errors.Is(err, nl.IPSetError(nl.IPSET_ERR_EXIST)) {
		return fmt.Errorf("ipset %s %s %s: %w", o.verb, o.set, o.arg, err)
	}
	return nil
}

// planSetDestroy destroys our sets that are no longer wanted.
func planSetDestroy(have, want *kernelState) []byte {
	var buf bytes.Buffer
	for _, name := range sortedKeys(have.sets) {
		if _, ok := want.sets[name]; !ok {
			fmt.Fprintf(&buf, "destroy %s\n", name)
		}
	}
	return buf.Bytes()
}

// restoreSets runs one `ipset restore` for the whole script: one process however many members change.
// -exist makes a replayed script (after a crash between two steps) succeed.
func (dp *Datapath) restoreSets(ctx context.Context, script []byte) error {
	if len(script) == 0 {
		return nil
	}
	if _, err := dp.exec.Run(ctx, script, "ipset", "-exist", "restore"); err != nil {
		return fmt.Errorf("ipset restore: %w", err)
	}
	return nil
}

// countLines counts the operations of a restore script.
func countLines(b []byte) int { return bytes.Count(b, []byte("\n")) }
