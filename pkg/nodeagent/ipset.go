package nodeagent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Earlier versions of egressgw matched on ipsets named egressgw-*; its sets now live in its nftables
// table. Apply destroys the old ipsets once the old iptables rules that used them are gone.

// observeLegacySets lists the egressgw-* ipsets a node still has from an earlier version. A node
// without the ipset tool has none.
func (dp *Datapath) observeLegacySets(ctx context.Context, k *kernelState) error {
	out, err := dp.exec.Run(ctx, nil, "ipset", "list", "-n")
	if errors.Is(err, exec.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list ipsets of an earlier egressgw version: %w", err)
	}
	for _, name := range strings.Fields(string(out)) {
		if strings.HasPrefix(name, ownSetPrefix) {
			k.legacySets = append(k.legacySets, name)
		}
	}
	return nil
}

// destroyLegacySets destroys the old ipsets in one `ipset restore`.
func (dp *Datapath) destroyLegacySets(ctx context.Context, have *kernelState) (int, error) {
	if len(have.legacySets) == 0 {
		return 0, nil
	}
	var script bytes.Buffer
	for _, name := range have.legacySets {
		fmt.Fprintf(&script, "destroy %s\n", name)
	}
	if _, err := dp.exec.Run(ctx, script.Bytes(), "ipset", "-exist", "restore"); err != nil {
		return 0, fmt.Errorf("destroy the ipsets of an earlier egressgw version: %w", err)
	}
	dp.log.Info("ipsets of an earlier egressgw version destroyed", "sets", have.legacySets)
	return len(have.legacySets), nil
}
