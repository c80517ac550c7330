package nodeagent

import (
	"cmp"
	"net"
	"net/netip"
	"slices"
)

// kernelState is the egressgw-owned part of one node's kernel: either observed from the kernel or
// rendered from a Desired value. Apply diffs the two.
type kernelState struct {
	// neigh maps a peer IP to the MAC of its tunnel device (neighbour entries on our device).
	neigh map[netip.Addr]macAddr
	// fdb maps a peer IP to the MAC whose frames are tunnelled to it (FDB entries on our device).
	fdb map[netip.Addr]macAddr
	// routes are the routes of our tables, sorted by table and destination.
	routes []route
	// rules holds our policy-routing rules.
	rules map[ruleKey]bool
	// sets holds the sets of our nftables table.
	sets map[string]*setState
	// nft is our nftables table's chains; nil when the node has no such table.
	nft *nftTable
	// tables holds, per iptables table, our chains and the built-in chains we jump from.
	tables map[string]*tableState
	// legacySets are ipsets of an earlier egressgw version (iptables and ipsets), to be destroyed.
	legacySets []string
}

// macAddr is an Ethernet address as a comparable value; other lengths (never ours) are the zero value.
type macAddr [6]byte

func macOf(hw net.HardwareAddr) macAddr {
	var m macAddr
	if len(hw) == len(m) {
		copy(m[:], hw)
	}
	return m
}

func (m macAddr) hardwareAddr() net.HardwareAddr { return net.HardwareAddr(m[:]) }

func (m macAddr) String() string { return m.hardwareAddr().String() }

// route is "dst via gw dev <tunnel> onlink" in table, or through the link with index ifindex when that
// is not 0 (the egress interface).
type route struct {
	table   uint32
	dst     netip.Prefix
	gw      netip.Addr
	ifindex int
}

func compareRoutes(a, b route) int {
	return cmp.Or(cmp.Compare(a.table, b.table), a.dst.Addr().Compare(b.dst.Addr()), cmp.Compare(a.dst.Bits(), b.dst.Bits()))
}

// ruleKey is one ip rule: fwmark mark/mask (from lo only when iifLo) looking up table.
type ruleKey struct {
	priority   int
	mark, mask uint32
	iifLo      bool
	table      uint32
}

// setState is one set: its type in ipset terms ("hash:ip" for addresses, "hash:net" for CIDRs, an
// nft interval set) and its members, sorted, in the form `nft list` prints them.
type setState struct {
	typ     string
	members []string
}

// tableState is one iptables table: chains maps every chain we care about to its rules, as iptables-save
// prints them after "-A CHAIN ".
type tableState struct {
	chains map[string][]string
}

func newKernelState() *kernelState {
	return &kernelState{
		neigh:  map[netip.Addr]macAddr{},
		fdb:    map[netip.Addr]macAddr{},
		rules:  map[ruleKey]bool{},
		sets:   map[string]*setState{},
		tables: map[string]*tableState{},
	}
}

func (k *kernelState) table(name string) *tableState {
	t, ok := k.tables[name]
	if !ok {
		t = &tableState{chains: map[string][]string{}}
		k.tables[name] = t
	}
	return t
}

// links are the facts about the node's devices that rendering needs: the tunnel's MTU and the index of
// the egress interface (0: none).
type links struct {
	mtu           int
	egressIfindex int
}

// render turns the desired datapath into the kernel state that implements it. The result shares d's
// member slices, so d must not change afterwards.
func render(d *Desired, cfg Config, l links) *kernelState {
	k := newKernelState()
	for _, p := range d.Peers {
		k.neigh[p.IP] = macOf(p.MAC)
		k.fdb[p.IP] = macOf(p.MAC)
	}
	renderRouting(k, d, cfg, l.egressIfindex)
	for _, s := range d.Sets {
		members := s.Members
		if s.Type == "hash:net" {
			members = outermostPrefixes(members)
		}
		k.sets[s.Name] = &setState{typ: s.Type, members: members}
	}
	renderNft(k, d, cfg, l.mtu)
	renderChains(k, cfg)
	return k
}

// renderRouting adds the exemption, steering, egress and return rules and the routes of our tables.
func renderRouting(k *kernelState, d *Desired, cfg Config, egressIfindex int) {
	p := cfg.RulePriority
	for _, g := range d.Gateways {
		mark, table := cfg.steerMark(g.Index), cfg.TableBase+g.Index
		k.rules[ruleKey{priority: p, mark: mark, mask: cfg.SteerMask, iifLo: true, table: mainTable}] = true
		k.rules[ruleKey{priority: p + 1, mark: mark, mask: cfg.SteerMask, table: table}] = true
		k.routes = append(k.routes, route{table: table, dst: defaultRoute, gw: g.IP})
	}
	k.rules[ruleKey{priority: p, mark: cfg.ReplyMark, mask: cfg.ReplyMark, iifLo: true, table: mainTable}] = true
	k.rules[ruleKey{priority: p + 1, mark: cfg.ReplyMark, mask: cfg.ReplyMark, table: cfg.ReturnTable}] = true
	if d.Egress != nil && egressIfindex > 0 {
		// SNATed packets carry the egress mark from mangle PREROUTING: routing happens before the SNAT, so
		// the mark, not the source address, is what can send them out of the egress interface.
		table := cfg.TableBase + cfg.egressIndex()
		k.rules[ruleKey{priority: p + 1, mark: cfg.steerMark(cfg.egressIndex()), mask: cfg.SteerMask, table: table}] = true
		k.routes = append(k.routes, route{table: table, dst: defaultRoute, gw: d.Egress.Router, ifindex: egressIfindex})
	}
	for _, r := range d.Returns {
		k.routes = append(k.routes, route{table: cfg.ReturnTable, dst: netip.PrefixFrom(r.Pod, 32), gw: r.Node})
	}
	slices.SortFunc(k.routes, compareRoutes)
}

const mainTable = 254

var defaultRoute = netip.MustParsePrefix("0.0.0.0/0")

// outermostPrefixes drops the members of a CIDR set that another member contains (a node IP inside
// the node subnet): an nft interval set refuses overlapping elements, and the set matches the same
// addresses without them. Two prefixes either nest or are disjoint, so after sorting by address (the
// shorter first) a member is nested exactly when the last member kept contains it. The result is
// sorted like members.
func outermostPrefixes(members []string) []string {
	type member struct {
		p    netip.Prefix
		text string
	}
	all := make([]member, 0, len(members))
	for _, m := range members {
		p, err := netip.ParsePrefix(m)
		if err != nil {
			a, aerr := netip.ParseAddr(m)
			if aerr != nil {
				continue // never produced by the builder
			}
			p = netip.PrefixFrom(a, 32)
		}
		all = append(all, member{p.Masked(), m})
	}
	slices.SortFunc(all, func(a, b member) int {
		return cmp.Or(a.p.Addr().Compare(b.p.Addr()), cmp.Compare(a.p.Bits(), b.p.Bits()))
	})
	out := make([]string, 0, len(all))
	var last netip.Prefix
	for _, m := range all {
		if last.IsValid() && last.Contains(m.p.Addr()) {
			continue
		}
		last = m.p
		out = append(out, m.text)
	}
	slices.Sort(out)
	return out
}
