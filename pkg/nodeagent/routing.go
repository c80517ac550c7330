package nodeagent

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"syscall"

	"github.com/vishvananda/netlink"
)

// ownTable reports whether a route table is one of ours.
func (c Config) ownTable(t uint32) bool {
	return t == c.ReturnTable || (t > c.TableBase && t <= c.TableBase+c.maxIndex())
}

// observeRouting reads the routes of our tables (one dump of all tables) and our rules.
func (dp *Datapath) observeRouting(k *kernelState, tunnel netlink.Link) error {
	routes, err := dp.nl.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: syscall.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if dp.cfg.ownTable(uint32(r.Table)) {
			gw, _ := netip.AddrFromSlice(r.Gw.To4())
			ifindex := r.LinkIndex
			if tunnel != nil && ifindex == tunnel.Attrs().Index {
				ifindex = 0
			}
			k.routes = append(k.routes, route{table: uint32(r.Table), dst: prefixOf(r.Dst), gw: gw, ifindex: ifindex})
		}
	}
	slices.SortFunc(k.routes, compareRoutes)
	rules, err := dp.nl.RuleList(netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list rules: %w", err)
	}
	for _, r := range rules {
		if dp.cfg.ownRule(r) {
			k.rules[keyOfRule(r)] = true
		}
	}
	return nil
}

func prefixOf(n *net.IPNet) netip.Prefix {
	if n == nil {
		return defaultRoute
	}
	ip, _ := netip.AddrFromSlice(n.IP.To4())
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(ip, ones)
}

func keyOfRule(r netlink.Rule) ruleKey {
	k := ruleKey{priority: r.Priority, mark: r.Mark, iifLo: r.IifName == "lo", table: uint32(r.Table)}
	if r.Mask != nil {
		k.mask = *r.Mask
	}
	return k
}

// addRouting adds the wanted routes, then the wanted rules: a rule never points at an empty table.
func (dp *Datapath) addRouting(link netlink.Link, have, want *kernelState) (int, error) {
	var toAdd []route
	mergeDiff(have.routes, want.routes, compareRoutes, func(r route) { toAdd = append(toAdd, r) }, func(route) {})
	toAdd = append(toAdd, changedRoutes(have.routes, want.routes)...)
	changed := 0
	for _, r := range toAdd {
		if err := dp.nl.RouteReplace(tunnelRoute(link, r)); err != nil {
			return changed, fmt.Errorf("route %s table %d: %w", r.dst, r.table, err)
		}
		changed++
	}
	for _, key := range sortedRules(want.rules) {
		if have.rules[key] {
			continue
		}
		if err := dp.nl.RuleAdd(netlinkRule(key)); err != nil && !errors.Is(err, syscall.EEXIST) {
			return changed, fmt.Errorf("rule %+v: %w", key, err)
		}
		changed++
	}
	return changed, nil
}

// removeRouting deletes unwanted rules first, then unwanted routes.
func (dp *Datapath) removeRouting(link netlink.Link, have, want *kernelState) (int, error) {
	changed := 0
	for key := range have.rules {
		if want.rules[key] {
			continue
		}
		if err := dp.nl.RuleDel(netlinkRule(key)); err != nil && !errors.Is(err, syscall.ENOENT) {
			return changed, fmt.Errorf("delete rule %+v: %w", key, err)
		}
		changed++
	}
	var toDel []route
	mergeDiff(have.routes, want.routes, compareRoutes, func(route) {}, func(r route) { toDel = append(toDel, r) })
	for _, r := range toDel {
		nr := &netlink.Route{Table: int(r.table), Dst: ipNet(r.dst), Gw: r.gw.AsSlice()}
		if err := dp.nl.RouteDel(nr); err != nil && !errors.Is(err, syscall.ESRCH) {
			return changed, fmt.Errorf("delete route %s table %d: %w", r.dst, r.table, err)
		}
		changed++
	}
	return changed, nil
}

// changedRoutes lists the wanted routes whose destination exists in have with another next hop.
func changedRoutes(have, want []route) []route {
	var out []route
	i := 0
	for _, w := range want {
		for i < len(have) && compareRoutes(have[i], w) < 0 {
			i++
		}
		if i < len(have) && compareRoutes(have[i], w) == 0 && (have[i].gw != w.gw || have[i].ifindex != w.ifindex) {
			out = append(out, w)
		}
	}
	return out
}

// tunnelRoute is "dst via gw dev <tunnel> onlink table T": gw is the peer node's IP, which is not on the
// tunnel's subnet (it has none), hence onlink; the static neighbour entry resolves it. A route with its
// own ifindex goes out of that link instead (the egress interface, whose router is onlink too: the
// interface holds its address as a /32).
func tunnelRoute(link netlink.Link, r route) *netlink.Route {
	ifindex := r.ifindex
	if ifindex == 0 {
		ifindex = link.Attrs().Index
	}
	return &netlink.Route{
		Table: int(r.table), Dst: ipNet(r.dst), Gw: r.gw.AsSlice(),
		LinkIndex: ifindex, Flags: int(netlink.FLAG_ONLINK),
	}
}

// sortedRules orders rules so that rules sharing a priority are always added in the same order (the
// kernel lists them in insertion order) and a re-created node dumps exactly like the first time.
func sortedRules(m map[ruleKey]bool) []ruleKey {
	out := make([]ruleKey, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b ruleKey) int {
		return cmp.Or(cmp.Compare(a.priority, b.priority), cmp.Compare(a.table, b.table),
			cmp.Compare(a.mark, b.mark), cmp.Compare(a.mask, b.mask))
	})
	return out
}

func netlinkRule(k ruleKey) *netlink.Rule {
	r := netlink.NewRule()
	r.Family = netlink.FAMILY_V4
	r.Priority, r.Mark, r.Table = k.priority, k.mark, int(k.table)
	mask := k.mask
	r.Mask = &mask
	if k.iifLo {
		r.IifName = "lo"
	}
	return r
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}
}
