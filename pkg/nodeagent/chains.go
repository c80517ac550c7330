package nodeagent

import (
	"strings"
)

// What egressgw keeps in iptables: one chain, jumped to last in filter FORWARD, that accepts tunnel
// traffic. Everything else is in its nftables table (nft.go). The accept cannot move there: an accept
// in an nft base chain ends only that chain, and the packet still meets the iptables FORWARD chain,
// whose DROP policy (kube-proxy's and many CNIs' nodes) would drop it; only a verdict inside that chain
// lets it through. Every rule carries a comment starting with "egressgw:".
const (
	chainAccept    = "EGRESSGW-ACCEPT" // filter FORWARD (last): let tunnel traffic through
	ownChainPrefix = "EGRESSGW-"
	commentPrefix  = "egressgw: "
	ownSetPrefix   = "egressgw-"
)

// Comments of the drop rules whose counters the agent exports.
const (
	failClosedComment      = "fail closed: no egress IP for policy "
	unmatchedTunnelComment = "tunnelled packets that no SNAT rule takes"
	spoofedTunnelComment   = "tunnel packets only from cluster nodes"
)

// jump is a rule in a built-in chain that enters one of ours, first or last in that chain.
type jump struct {
	table, from, to string
	last            bool
	comment         string
}

// jumps are our entry points into iptables: the accept chain runs last, only for what nobody decided.
// Earlier versions of egressgw had first-position jumps too; their chains and jumps are deleted by the
// same diff (planIptables), as chains of ours that are no longer wanted.
var jumps = []jump{
	{"filter", "FORWARD", chainAccept, true, "let tunnel traffic through"},
}

func (j jump) spec() string { return rule(j.comment, "-j "+j.to) }

// rule joins matches, the comment and the target in the order iptables-save prints them.
func rule(comment, target string, matches ...string) string {
	parts := append(matches, "-m comment --comment "+quoteComment(commentPrefix+comment), target)
	return strings.Join(nonEmpty(parts), " ")
}

func nonEmpty(parts []string) []string {
	out := parts[:0]
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// quoteComment quotes a comment the way iptables-save prints it; characters that it would escape are
// replaced, so that the rendered rule and the saved rule compare equal.
func quoteComment(c string) string {
	c = strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r == '\'' || r < ' ' || r > '~' {
			return '_'
		}
		return r
	}, c)
	if len(c) > 250 {
		c = c[:250]
	}
	return `"` + c + `"`
}

// renderChains fills our iptables chain and the jump into it.
func renderChains(k *kernelState, cfg Config) {
	for _, j := range jumps {
		t := k.table(j.table)
		t.chains[j.from] = append(t.chains[j.from], j.spec())
		t.chains[j.to] = nil
	}
	k.table("filter").chains[chainAccept] = acceptRules(cfg)
}

func acceptRules(cfg Config) []string {
	return []string{
		rule("forward what leaves through the tunnel", "-j ACCEPT", "-o "+cfg.Device),
		rule("forward what arrives through the tunnel", "-j ACCEPT", "-i "+cfg.Device),
	}
}
