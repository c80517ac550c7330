package nodeagent

import (
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/egressgw/egressgw/test/netlab"
)

// sendUntilSeen sends a datagram carrying token from ns up to three times, a second apart, until the
// server logs it (a datagram may be lost on a loaded machine), and returns the sources it logged.
func sendUntilSeen(t *testing.T, l *lab, ns *netlab.Namespace, token string) []string {
	t.Helper()
	for range 3 {
		if err := ns.SendUDP(context.Background(), serverTCP, token); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		seen, err := l.srv.Seen(token)
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) > 0 {
			return seen
		}
	}
	return nil
}

// ruleCounter sums the packet counters of the rules in iptables-save -c that match re.
func ruleCounter(t *testing.T, n *netlab.Node, table string, re *regexp.Regexp) int {
	t.Helper()
	out, err := n.NS.Run(context.Background(), nil, "iptables-save", "-c", "-t", table)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		v, _ := strconv.Atoi(m[1])
		total += v
	}
	return total
}

var (
	inputDropRE = regexp.MustCompile(`(?m)^\[(\d+):\d+\] -A ` + chainInput + ` .*-j DROP$`)
	snatRE      = regexp.MustCompile(`(?m)^\[(\d+):\d+\] -A ` + chainSNAT + ` .*-j SNAT .*$`)
)

func inputDrops(t *testing.T, n *netlab.Node) int { return ruleCounter(t, n, "filter", inputDropRE) }

var (
	unmatchedTunnelRE = regexp.MustCompile(`(?m)^\[(\d+):\d+\] -A ` + chainForward + ` .*` + unmatchedTunnelComment + `.*-j DROP$`)
	failClosedRE      = regexp.MustCompile(`(?m)^\[(\d+):\d+\] -A ` + chainForward + ` .*` + failClosedComment + `.*-j DROP$`)
)

func unmatchedTunnelDrops(t *testing.T, n *netlab.Node) int {
	return ruleCounter(t, n, "filter", unmatchedTunnelRE)
}

func failClosedDrops(t *testing.T, n *netlab.Node) int {
	return ruleCounter(t, n, "filter", failClosedRE)
}

func snatPackets(t *testing.T, n *netlab.Node) int { return ruleCounter(t, n, "nat", snatRE) }

// steerIndex is the gateway index node uses for its (single) gateway, read from the desired state.
func steerIndex(t *testing.T, l *lab, node string) uint32 {
	t.Helper()
	v := l.view(movingPolicy(l, "node2"))
	v.Node = node
	d, err := DesiredState(v, l.cfg)
	if err != nil || len(d.Gateways) != 1 {
		t.Fatalf("desired state of %s: %v, gateways %v", node, err, d.Gateways)
	}
	return d.Gateways[0].Index
}
