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

// dropCounters reads n's drop counters through the datapath's own reader.
func dropCounters(t *testing.T, n *netlab.Node) map[string]DropCount {
	t.Helper()
	dp, err := New(DefaultConfig(), n.NS.NL, n.NS, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	c, err := dp.DropCounters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func inputDrops(t *testing.T, n *netlab.Node) int {
	return int(dropCounters(t, n)[DropSpoofedTunnelSource].Packets)
}

func unmatchedTunnelDrops(t *testing.T, n *netlab.Node) int {
	return int(dropCounters(t, n)[DropUnmatchedTunnel].Packets)
}

func failClosedDrops(t *testing.T, n *netlab.Node) int {
	return int(dropCounters(t, n)[DropFailClosed].Packets)
}

var snatCounterRE = regexp.MustCompile(`counter packets (\d+) bytes \d+ snat to \d`)

// snatPackets sums the packet counters of the gateway SNAT rules in egressgw's nat chain of n.
func snatPackets(t *testing.T, n *netlab.Node) int {
	t.Helper()
	out, err := n.NS.Run(context.Background(), nil, "nft", "list", "chain", "ip", nftTableName, "postrouting")
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, m := range snatCounterRE.FindAllStringSubmatch(string(out), -1) {
		v, _ := strconv.Atoi(m[1])
		total += v
	}
	return total
}

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
