package nodeagent

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
)

// A pod change is one element added to or deleted from one of egressgw's address sets. Spawning nft for
// it costs about 10 ms, almost all of it the process; the same change as nftables netlink messages is
// a fraction of a millisecond. So a change that touches nothing but the members of address sets goes
// through netlink (github.com/google/nftables), in one batch: one transaction, all of it or nothing,
// as with nft -f. Everything else (a set or chain created, deleted or rewritten, interval sets, whose
// elements nft splits into ranges) still goes through nft.

// nsDoer is an Exec that runs a function inside its network namespace (the tests' and the lab's
// namespaces): the netlink socket is opened there.
type nsDoer interface{ Do(fn func() error) error }

// elementChange is one set's members to add and delete.
type elementChange struct {
	set        string
	adds, dels []string
}

// elementOnly returns the set changes when have and want differ in nothing but the members of address
// (hash:ip) sets, and whether they do.
func elementOnly(have, want *kernelState) ([]elementChange, bool) {
	if have.nft == nil || want.nft == nil || needsRebuild(have, want) || len(have.sets) != len(want.sets) ||
		len(have.nft.chains) != len(want.nft.chains) {
		return nil, false
	}
	for name, w := range want.nft.chains {
		h := have.nft.chains[name]
		if h == nil || h.header != w.header || !slices.Equal(h.rules, w.rules) {
			return nil, false
		}
	}
	var out []elementChange
	for _, name := range sortedKeys(want.sets) {
		w, h := want.sets[name], have.sets[name]
		if h == nil {
			return nil, false
		}
		c := elementChange{set: name}
		mergeDiff(h.members, w.members, strings.Compare,
			func(m string) { c.adds = append(c.adds, m) }, func(m string) { c.dels = append(c.dels, m) })
		if len(c.adds)+len(c.dels) == 0 {
			continue
		}
		if w.typ != "hash:ip" {
			return nil, false
		}
		out = append(out, c)
	}
	return out, true
}

// canUseNetlink reports whether the datapath knows which network namespace its netlink socket belongs
// in: the agent's own (HostExec) or its Exec's (nsDoer). Any other Exec keeps the nft process, so that
// a wrapper around a test namespace never reaches the host's tables.
func (dp *Datapath) canUseNetlink() bool {
	switch dp.exec.(type) {
	case HostExec, *HostExec:
		return true
	}
	_, ok := dp.exec.(nsDoer)
	return ok
}

// setElements applies changes in one netlink batch, in the datapath's namespace.
func (dp *Datapath) setElements(changes []elementChange) error {
	run := func() error {
		c, err := nftables.New()
		if err != nil {
			return err
		}
		table := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: nftTableName}
		for _, ch := range changes {
			set := &nftables.Set{Table: table, Name: ch.set, KeyType: nftables.TypeIPAddr}
			adds, err := ipv4Elements(ch.adds)
			if err != nil {
				return err
			}
			dels, err := ipv4Elements(ch.dels)
			if err != nil {
				return err
			}
			if len(adds) > 0 {
				if err := c.SetAddElements(set, adds); err != nil {
					return err
				}
			}
			if len(dels) > 0 {
				if err := c.SetDeleteElements(set, dels); err != nil {
					return err
				}
			}
		}
		return c.Flush()
	}
	if err := dp.inNamespace(run); err != nil {
		return fmt.Errorf("nftables set elements through netlink (%s): %w", describeChanges(changes), err)
	}
	return nil
}

func ipv4Elements(members []string) ([]nftables.SetElement, error) {
	out := make([]nftables.SetElement, 0, len(members))
	for _, m := range members {
		ip, err := netip.ParseAddr(m)
		if err != nil || !ip.Is4() {
			return nil, fmt.Errorf("set member %q is not an IPv4 address", m)
		}
		b := ip.As4()
		out = append(out, nftables.SetElement{Key: b[:]})
	}
	return out, nil
}

// describeChanges is a bounded summary for error messages.
func describeChanges(changes []elementChange) string {
	var parts []string
	for _, c := range changes {
		parts = append(parts, fmt.Sprintf("%s +%d -%d", c.set, len(c.adds), len(c.dels)))
		if len(parts) == 5 {
			parts = append(parts, "...")
			break
		}
	}
	return strings.Join(parts, ", ")
}
