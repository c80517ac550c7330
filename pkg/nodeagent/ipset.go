package nodeagent

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
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

// planSets returns the `ipset restore` input that creates missing sets and adds and deletes members
// so that have matches want. Sets that are no longer wanted are left for planSetDestroy, which runs
// after the iptables rules that use them are gone. Adds come before deletes, per set.
func planSets(have, want *kernelState) ([]byte, error) {
	var buf bytes.Buffer
	for _, name := range sortedKeys(want.sets) {
		w, h := want.sets[name], have.sets[name]
		if h != nil && h.typ != w.typ {
			return nil, fmt.Errorf("ipset %s is %s, want %s: remove it (egressgw uninstall) and resync", name, h.typ, w.typ)
		}
		if h == nil {
			fmt.Fprintf(&buf, "create %s %s family inet maxelem %d\n", name, w.typ, setMaxElem)
			h = &setState{}
		}
		writeMemberDiff(&buf, name, h.members, w.members)
	}
	return buf.Bytes(), nil
}

// writeMemberDiff writes the adds, then the deletes, that turn the sorted have into the sorted want.
func writeMemberDiff(buf *bytes.Buffer, name string, have, want []string) {
	if slices.Equal(have, want) {
		return
	}
	var dels []string
	mergeDiff(have, want, strings.Compare,
		func(m string) { fmt.Fprintf(buf, "add %s %s\n", name, m) },
		func(m string) { dels = append(dels, m) })
	for _, m := range dels {
		fmt.Fprintf(buf, "del %s %s\n", name, m)
	}
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
