package failover

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// namesPerCause is how many node names a message gives for each cause: enough to find the nodes, few
// enough that a message stays short with any number of nodes (status messages are capped at 1 KiB).
const namesPerCause = 3

// whyUnplaced explains, in the order an operator would check, why no node can take the IP. Nodes are
// summarized per cause (a count and a few names), so that the message is as long for 500 nodes as for 5.
func (p *placer) whyUnplaced(gw Gateway, ip netip.Addr) (reason, message string) {
	if len(gw.Nodes) == 0 {
		return ReasonNoGatewayNodes, fmt.Sprintf("no node matches the nodeSelector of gateway %s: label the gateway nodes", gw.Name)
	}
	var ineligible, elsewhere, full causes
	for _, name := range gw.Nodes {
		n := p.nodes[name]
		switch {
		case n.Ineligible != "":
			ineligible.add(n.Ineligible, name)
		case n.NoNewIPs:
			ineligible.add("ProbesUnsettled", name)
		case inSubnets(n.Subnets, ip):
			full.add("no free slot", name)
		default:
			elsewhere.add("in "+prefixList(n.Subnets), name)
		}
	}
	switch {
	case len(full) > 0:
		return ReasonCapacityExhausted, fmt.Sprintf("the gateway nodes whose subnet contains %s have no free IP address slot left: %s",
			ip, full.summary())
	case len(elsewhere) > 0:
		return ReasonNoNodeInSubnet, fmt.Sprintf("no eligible gateway node has a subnet that contains %s: %s; add a gateway node in that subnet or use an IP of one of these subnets",
			ip, elsewhere.summary())
	default:
		return ReasonNoEligibleNode, fmt.Sprintf("none of the %d gateway nodes can hold an IP: %s", len(gw.Nodes), ineligible.summary())
	}
}

// causes groups node names by the cause that applies to them.
type causes map[string][]string

func (c *causes) add(cause, node string) {
	if *c == nil {
		*c = causes{}
	}
	(*c)[cause] = append((*c)[cause], node)
}

// summary gives every cause with its count and the first few names, most frequent cause first:
// "12 NotReady (a, b, c and 9 more), 1 Cordoned (d)".
func (c causes) summary() string {
	keys := slices.SortedFunc(maps.Keys(c), func(a, b string) int { return cmp.Or(cmp.Compare(len(c[b]), len(c[a])), cmp.Compare(a, b)) })
	parts := make([]string, len(keys))
	for i, k := range keys {
		names := slices.Sorted(slices.Values(c[k]))
		shown := strings.Join(names[:min(len(names), namesPerCause)], ", ")
		if more := len(names) - namesPerCause; more > 0 {
			shown += fmt.Sprintf(" and %d more", more)
		}
		parts[i] = fmt.Sprintf("%d %s (%s)", len(names), k, shown)
	}
	return strings.Join(parts, ", ")
}

func prefixList(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "no known subnet"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
