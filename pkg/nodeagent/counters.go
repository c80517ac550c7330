package nodeagent

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// spoofedTunnelComment is the comment of the INPUT rule that drops tunnel packets from senders that
// are not cluster nodes (inputRules).
const spoofedTunnelComment = "tunnel packets only from cluster nodes"

// Drop reasons, stable for metrics.
const (
	DropFailClosed          = "fail_closed"           // a selected pod's policy has no usable egress IP
	DropUnmatchedTunnel     = "unmatched_tunnel"      // a tunnelled packet no SNAT rule of this gateway takes
	DropSpoofedTunnelSource = "spoofed_tunnel_source" // a VXLAN packet from an address that is not a node
)

// DropCount is what egressgw's drop rules of one reason have counted since they were created.
type DropCount struct {
	Packets, Bytes uint64
}

// DropCounters reads the packet and byte counters of egressgw's DROP rules in the filter table
// (`iptables-save -c -t filter`), summed by reason; every reason is present, zero when its rule has
// counted nothing or does not exist. The counters restart when a rule is re-created (a policy's
// fail-closed rule appears and goes with the policy's state), as Prometheus counters may.
func (dp *Datapath) DropCounters(ctx context.Context) (map[string]DropCount, error) {
	out, err := dp.exec.Run(ctx, nil, "iptables-save", "-c", "-t", "filter")
	if err != nil {
		return nil, fmt.Errorf("read the drop counters: %w", err)
	}
	return parseDropCounters(string(out)), nil
}

func parseDropCounters(save string) map[string]DropCount {
	counts := map[string]DropCount{DropFailClosed: {}, DropUnmatchedTunnel: {}, DropSpoofedTunnelSource: {}}
	for line := range strings.Lines(save) {
		line = strings.TrimSpace(line)
		c, rest, ok := ruleCounts(line)
		if !ok || !strings.HasSuffix(rest, "-j DROP") {
			continue
		}
		reason := dropReason(rest)
		if reason == "" {
			continue
		}
		sum := counts[reason]
		sum.Packets += c.Packets
		sum.Bytes += c.Bytes
		counts[reason] = sum
	}
	return counts
}

// ruleCounts splits "[packets:bytes] -A CHAIN ..." into its counters and the rule.
func ruleCounts(line string) (DropCount, string, bool) {
	if !strings.HasPrefix(line, "[") {
		return DropCount{}, "", false
	}
	counters, rest, ok := strings.Cut(line[1:], "] ")
	if !ok {
		return DropCount{}, "", false
	}
	pk, by, ok := strings.Cut(counters, ":")
	if !ok {
		return DropCount{}, "", false
	}
	p, err1 := strconv.ParseUint(pk, 10, 64)
	b, err2 := strconv.ParseUint(by, 10, 64)
	return DropCount{Packets: p, Bytes: b}, rest, err1 == nil && err2 == nil
}

func dropReason(rule string) string {
	switch {
	case strings.HasPrefix(rule, "-A "+chainForward+" ") && strings.Contains(rule, `"`+commentPrefix+failClosedComment):
		return DropFailClosed
	case strings.HasPrefix(rule, "-A "+chainForward+" ") && strings.Contains(rule, `"`+commentPrefix+unmatchedTunnelComment+`"`):
		return DropUnmatchedTunnel
	case strings.HasPrefix(rule, "-A "+chainInput+" ") && strings.Contains(rule, `"`+commentPrefix+spoofedTunnelComment+`"`):
		return DropSpoofedTunnelSource
	}
	return ""
}
