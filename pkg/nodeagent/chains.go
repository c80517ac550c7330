package nodeagent

import (
	"fmt"
	"net/netip"
	"strings"
)

// Our iptables chains. Every rule in them carries a comment starting with "egressgw:".
const (
	chainMark      = "EGRESSGW-PREROUTING"  // mangle: steering marks, tunnel connmarks, reply marks
	chainMSS       = "EGRESSGW-MSS"         // mangle FORWARD: MSS clamp for TCP entering the tunnel
	chainSNAT      = "EGRESSGW-POSTROUTING" // nat: cluster bypass, steered bypass, gateway SNAT
	chainInput     = "EGRESSGW-INPUT"       // filter INPUT: VXLAN only from node IPs
	chainForward   = "EGRESSGW-FORWARD"     // filter FORWARD (first): drop unsolicited egress-IP traffic
	chainAccept    = "EGRESSGW-ACCEPT"      // filter FORWARD (last): let tunnel traffic through
	ownChainPrefix = "EGRESSGW-"
	commentPrefix  = "egressgw: "
	ownSetPrefix   = "egressgw-"
)

// Comments of the drop rules whose counters the agent exports.
const (
	failClosedComment      = "fail closed: no egress IP for policy "
	unmatchedTunnelComment = "tunnelled packets that no SNAT rule takes"
)

// jump is a rule in a built-in chain that enters one of ours, first or last in that chain.
type jump struct {
	table, from, to string
	last            bool
	comment         string
}

// jumps are our entry points. First-position jumps run before the rules of other owners, so that the
// CNI's masquerade never sees steered packets; the accept chain runs last, only for what nobody decided.
var jumps = []jump{
	{"mangle", "PREROUTING", chainMark, false, "steering and tunnel return marks"},
	{"mangle", "FORWARD", chainMSS, false, "clamp TCP MSS for the tunnel"},
	{"nat", "POSTROUTING", chainSNAT, false, "egress SNAT, and no CNI masquerade for steered packets"},
	{"filter", "INPUT", chainInput, false, "tunnel port only from cluster nodes"},
	{"filter", "FORWARD", chainForward, false, "no unsolicited traffic to egress IPs"},
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

func hexMark(mark, mask uint32) string { return fmt.Sprintf("%#x/%#x", mark, mask) }

// renderChains fills our chains and the jumps into them.
func renderChains(k *kernelState, d *Desired, cfg Config, mtu int) {
	for _, j := range jumps {
		t := k.table(j.table)
		t.chains[j.from] = append(t.chains[j.from], j.spec())
		t.chains[j.to] = nil
	}
	k.table("mangle").chains[chainMark] = markRules(d, cfg)
	k.table("mangle").chains[chainMSS] = mssRules(cfg, mtu)
	k.table("nat").chains[chainSNAT] = snatRules(d, cfg)
	k.table("filter").chains[chainInput] = inputRules(cfg)
	k.table("filter").chains[chainForward] = forwardRules(d, cfg)
	k.table("filter").chains[chainAccept] = acceptRules(cfg)
	orderJumps(k)
}

// orderJumps puts first-position jumps before last-position ones in each built-in chain.
func orderJumps(k *kernelState) {
	for _, j := range jumps {
		if !j.last {
			continue
		}
		rules := k.table(j.table).chains[j.from]
		for i, r := range rules {
			if r == j.spec() {
				rules = append(append(rules[:i:i], rules[i+1:]...), r)
				break
			}
		}
		k.table(j.table).chains[j.from] = rules
	}
}

// matchSets renders a policy's set matches: source, destination, and not-excluded.
func matchSets(r PolicyRule) []string {
	m := []string{"-m set --match-set " + r.Src + " src"}
	if r.Dst != "" {
		m = append(m, "-m set --match-set "+r.Dst+" dst")
	}
	if r.Excluded != "" {
		m = append(m, "-m set ! --match-set "+r.Excluded+" dst")
	}
	return m
}

func inputRules(cfg Config) []string {
	return []string{rule("tunnel packets only from cluster nodes", "-j DROP",
		fmt.Sprintf("-p udp -m udp --dport %d", cfg.Port), "-m set ! --match-set "+setNodes+" src")}
}

// forwardRules is the filter FORWARD chain, first in FORWARD, where egressgw drops what must never
// leave: traffic of selected pods whose policy has no usable egress IP (fail closed); tunnelled packets
// that no SNAT rule of this gateway takes (a source node that has not re-steered after a move, or a
// packet forced into the tunnel), which would otherwise leave with the gateway's own address; and
// traffic to the egress IPs held here that conntrack did not turn back into a reply for a pod: the IP
// is routed to this node but is not an address of it, so anything else would loop.
func forwardRules(d *Desired, cfg Config) []string {
	var out []string
	for _, b := range d.Blocks {
		matches := append(matchSets(b), "-m set ! --match-set "+setCluster+" dst")
		out = append(out, rule(failClosedComment+b.Policy, "-j DROP", matches...))
	}
	out = append(out, rule(unmatchedTunnelComment, "-j DROP", "-i "+cfg.Device, "-m conntrack --ctdir ORIGINAL",
		"-m mark ! --mark "+hexMark(cfg.steerMark(cfg.egressIndex()), cfg.SteerMask)))
	seen := map[netip.Addr]bool{}
	for _, s := range d.SNATs {
		if !seen[s.EgressIP] {
			seen[s.EgressIP] = true
			out = append(out, rule("egress IP "+s.EgressIP.String()+" takes replies only", "-j DROP",
				"-d "+s.EgressIP.String()+"/32"))
		}
	}
	return out
}

func acceptRules(cfg Config) []string {
	return []string{
		rule("forward what leaves through the tunnel", "-j ACCEPT", "-o "+cfg.Device),
		rule("forward what arrives through the tunnel", "-j ACCEPT", "-i "+cfg.Device),
	}
}
