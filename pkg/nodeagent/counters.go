package nodeagent

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Drop reasons, stable for metrics.
const (
	DropFailClosed          = "fail_closed"           // a selected pod's policy has no usable egress IP
	DropUnmatchedTunnel     = "unmatched_tunnel"      // a tunnelled packet no SNAT rule of this gateway takes
	DropSpoofedTunnelSource = "spoofed_tunnel_source" // a VXLAN packet from an address that is not a node
	DropUnsolicitedEgressIP = "unsolicited_egress_ip" // traffic to an egress IP held here that is no reply
)

// DropCount is what egressgw's drop rules of one reason have counted since they were created.
type DropCount struct {
	Packets, Bytes uint64
	// ByPolicy splits the fail-closed count by policy key ("namespace/name"); nil for other reasons.
	ByPolicy map[string]DropCount
}

// DropCounters reads the counters of the drop rules of egressgw's nftables table (one `nft -t list
// table`, which leaves out the sets' members), summed by reason, and for fail_closed by policy too.
// Every reason is present, zero when its rules counted nothing or do not exist. A counter restarts when
// its rule is re-created: a policy's fail-closed rule comes and goes with the policy's state, and a
// change to a chain rewrites the chain (Prometheus counters may restart).
func (dp *Datapath) DropCounters(ctx context.Context) (map[string]DropCount, error) {
	k := newKernelState()
	if err := dp.observeNftTerse(ctx, k); err != nil {
		return nil, fmt.Errorf("read the drop counters: %w", err)
	}
	counts := map[string]DropCount{DropFailClosed: {ByPolicy: map[string]DropCount{}}, DropUnmatchedTunnel: {},
		DropSpoofedTunnelSource: {}, DropUnsolicitedEgressIP: {}}
	if k.nft == nil {
		return counts, nil
	}
	for _, chain := range []string{"forward", "input"} {
		c := k.nft.chains[chain]
		if c == nil {
			continue
		}
		for _, r := range c.rules {
			addDropCount(counts, r)
		}
	}
	return counts, nil
}

// observeNftTerse reads the table without the sets' members and keeps the counters' values.
func (dp *Datapath) observeNftTerse(ctx context.Context, k *kernelState) error {
	tables, err := dp.exec.Run(ctx, nil, "nft", "list", "tables", "ip")
	if err != nil {
		return err
	}
	if !strings.Contains(string(tables)+"\n", "table "+nftFamilyTable+"\n") {
		return nil
	}
	out, err := dp.exec.Run(ctx, nil, "nft", "-t", "-y", "list", "table", "ip", nftTableName)
	if err != nil {
		return err
	}
	return parseNftTableCounted(out, k)
}

// parseNftTableCounted is parseNftTable that keeps the values of the counters.
func parseNftTableCounted(out []byte, k *kernelState) error {
	counted := nftCounterRE.ReplaceAllStringFunc(string(out), func(c string) string {
		return strings.Replace(c, "counter ", "counter@", 1)
	})
	if err := parseNftTable([]byte(counted), k); err != nil {
		return err
	}
	for _, c := range k.nft.chains {
		for i, r := range c.rules {
			c.rules[i] = strings.Replace(r, "counter@", "counter ", 1)
		}
	}
	return nil
}

var (
	dropRuleRE     = regexp.MustCompile(`counter packets (\d+) bytes (\d+) drop comment "` + regexp.QuoteMeta(commentPrefix) + `([^"]*)"$`)
	egressIPDropRE = regexp.MustCompile(`^egress IP \S+ takes replies only$`)
)

// addDropCount adds one rule's counters to its reason.
func addDropCount(counts map[string]DropCount, rule string) {
	m := dropRuleRE.FindStringSubmatch(rule)
	if m == nil {
		return
	}
	packets, _ := strconv.ParseUint(m[1], 10, 64)
	bytes, _ := strconv.ParseUint(m[2], 10, 64)
	var reason string
	switch comment := m[3]; {
	case strings.HasPrefix(comment, failClosedComment):
		reason = DropFailClosed
		policy := strings.TrimPrefix(comment, failClosedComment)
		p := counts[reason].ByPolicy[policy]
		counts[reason].ByPolicy[policy] = DropCount{Packets: p.Packets + packets, Bytes: p.Bytes + bytes}
	case comment == unmatchedTunnelComment:
		reason = DropUnmatchedTunnel
	case comment == spoofedTunnelComment:
		reason = DropSpoofedTunnelSource
	case egressIPDropRE.MatchString(comment):
		reason = DropUnsolicitedEgressIP
	default:
		return
	}
	c := counts[reason]
	c.Packets += packets
	c.Bytes += bytes
	counts[reason] = c
}
