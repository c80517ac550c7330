package e2e_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/egressgw/egressgw/test/lab"
	"github.com/egressgw/egressgw/test/netlab"
)

// failoverTrials is how many gateway deaths TestFailoverTrials measures (EGRESSGW_E2E_FAILOVERS).
func failoverTrials() int {
	if n, err := strconv.Atoi(os.Getenv("EGRESSGW_E2E_FAILOVERS")); err == nil && n > 0 {
		return n
	}
	return 20
}

// TestFailoverTrials kills the gateway holding payments' IP (agent SIGKILL, links cut) again and again
// while a pod asks the firewall every 50 ms: traffic must come back each time, with the same address and
// never another. The figures (outage as the firewall saw it, and its parts) are logged.
func TestFailoverTrials(t *testing.T) {
	l := needLab(t)
	var outage, detected, moved, assigned, back []time.Duration
	for _, f := range runTrials(t, l, failoverTrials()) {
		outage, detected, moved = append(outage, f.Outage), append(detected, f.Detected), append(moved, f.Moved)
		assigned, back = append(assigned, f.Assigned), append(back, f.Back)
	}
	for _, m := range []struct {
		name string
		ds   []time.Duration
	}{{"outage seen by the firewall", outage}, {"status left the dead node", detected}, {"EC2 moved the IP", moved},
		{"status Assigned on the new node", assigned}, {"firewall answered again", back}} {
		t.Logf("%-32s p50 %4d ms  p99 %4d ms  max %4d ms  (%d trials, times from the kill)", m.name,
			lab.Percentile(m.ds, 50).Milliseconds(), lab.Percentile(m.ds, 99).Milliseconds(), lab.Percentile(m.ds, 100).Milliseconds(), len(m.ds))
	}
}

// runTrials kills the gateway holding payments' IP n times while pay-node3 asks the firewall every 50 ms,
// failing the test on a trial that does not recover or a request seen from another address than the
// egress IP, and logs each trial.
func runTrials(t *testing.T, l *lab.Lab, n int) []lab.Failover {
	t.Helper()
	ctx := context.Background()
	client := l.PodByName("payments", "pay-node3")
	var out []lab.Failover
	for i := range n {
		f, err := l.RunFailover(ctx, "gw-pay", lab.PayIP, client)
		if err != nil {
			t.Fatalf("trial %d: %v", i+1, err)
		}
		t.Logf("trial %d: %s", i+1, f)
		for src, n := range f.Sources {
			if src != lab.PayIP {
				t.Errorf("trial %d: the firewall saw %d requests from %s", i+1, n, src)
			}
		}
		out = append(out, f)
		if err := l.WaitHealthy(ctx, "gw-pay"); err != nil {
			t.Fatalf("trial %d: %v", i+1, err)
		}
	}
	return out
}

// TestLongLivedTCPAcrossFailover holds TCP connections open from a selected pod to the firewall across
// a failover and counts those that still carry a request afterwards. A connection that answers must do
// so with the egress IP and its original source port: anything else is a wrong source.
func TestLongLivedTCPAcrossFailover(t *testing.T) {
	l := needLab(t)
	ctx := context.Background()
	pod := l.PodByName("payments", "pay-node4")
	const conns = 10
	var open []net.Conn
	var before []string
	for i := range conns {
		var c net.Conn
		err := pod.NS.Do(func() (err error) {
			c, err = net.DialTimeout("tcp", netip.AddrPortFrom(netlab.ServerIP, netlab.EchoPort).String(), 3*time.Second)
			return err
		})
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		defer c.Close()
		src, err := exchange(c, fmt.Sprintf("long-%d-before", i), 3*time.Second)
		if err != nil || !sameAddr(src, lab.PayIP) {
			t.Fatalf("connection %d before the failover: %s, %v", i, src, err)
		}
		open, before = append(open, c), append(before, src)
	}
	from, _, _ := l.Holder(ctx, "gw-pay", lab.PayIP)
	if err := l.KillNode(from); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.ReviveNode(ctx, from); err != nil {
			t.Error(err)
		}
		if err := l.WaitHealthy(ctx, "gw-pay"); err != nil {
			t.Error(err)
		}
	}()
	if err := l.WaitMoved(ctx, "gw-pay", lab.PayIP, from, time.Minute); err != nil {
		t.Fatal(err)
	}
	survived := 0
	var reasons []string
	for i, c := range open {
		// TCP retransmits what the dead gateway swallowed; give it time to reach the new one.
		src, err := exchange(c, fmt.Sprintf("long-%d-after", i), 5*time.Second)
		switch {
		case err != nil:
			reasons = append(reasons, fmt.Sprintf("connection %d: %v", i, err))
		case src != before[i]:
			t.Errorf("connection %d answered from %s after the failover, was %s: a different source", i, src, before[i])
		default:
			survived++
		}
	}
	t.Logf("%d of %d TCP connections survived the failover (same egress IP and source port on the new gateway); the others: %s",
		survived, conns, strings.Join(reasons, "; "))
}

// exchange writes one line on c and returns the source address:port the firewall saw.
func exchange(c net.Conn, token string, timeout time.Duration) (string, error) {
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintf(c, "%s\n", token); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	src, _, _ := strings.Cut(line, " ")
	return src, nil
}

// TestLeaderKilled kills the leading manager replica with SIGKILL, first in normal operation (the IP must
// stay where it is and traffic must flow on), then right after a gateway's death (the pending failover
// must complete under the new leader).
func TestLeaderKilled(t *testing.T) {
	l := needLab(t)
	ctx := context.Background()
	client := l.PodByName("payments", "pay-node3")
	t.Run("in normal operation", func(t *testing.T) {
		leader, err := l.Leader()
		if err != nil {
			t.Fatal(err)
		}
		holder, _, _ := l.Holder(ctx, "gw-pay", lab.PayIP)
		pr := lab.StartProber(ctx, client)
		killed := time.Now()
		if err := l.KillManager(leader); err != nil {
			t.Fatal(err)
		}
		other := 3 - leader
		if err := l.WaitFor(ctx, time.Minute, "the other replica to lead", func() (bool, string) {
			got, err := l.Leader()
			return err == nil && got == other, fmt.Sprint(got, err)
		}); err != nil {
			t.Fatal(err)
		}
		took := time.Since(killed)
		time.Sleep(2 * time.Second) // the new leader's first syncs, under traffic
		attempts := pr.Finish()
		if now, _, _ := l.Holder(ctx, "gw-pay", lab.PayIP); now != holder {
			t.Errorf("the IP moved from %s to %s when only the manager died", holder, now)
		}
		if in, ok := l.Cloud.Where(lab.PayIP); !ok {
			t.Errorf("the cloud no longer shows %s on an instance (%q)", lab.PayIP, in)
		}
		unanswered := onlyEgressIP(t, attempts, "while the leader changed")
		t.Logf("replica %d took over %s after replica %d was killed; %d of %d requests unanswered meanwhile (longest gap %s)",
			other, took.Round(time.Millisecond), leader, unanswered, len(attempts), lab.LongestGap(attempts))
		if err := l.StartManager(leader); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("during a failover", func(t *testing.T) {
		leader, err := l.Leader()
		if err != nil {
			t.Fatal(err)
		}
		from, _, _ := l.Holder(ctx, "gw-pay", lab.PayIP)
		pr := lab.StartProber(ctx, client)
		time.Sleep(300 * time.Millisecond)
		killed := time.Now()
		if err := l.KillNode(from); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // the gateway is dead; the leader has not decided yet
		if err := l.KillManager(leader); err != nil {
			t.Fatal(err)
		}
		err = l.WaitMoved(ctx, "gw-pay", lab.PayIP, from, time.Minute)
		assigned := time.Since(killed)
		if err == nil {
			err = l.WaitAnswered(ctx, pr, killed, 30*time.Second)
		}
		attempts := pr.Finish()
		firstFail, back := lab.BackSince(attempts, killed)
		onlyEgressIP(t, attempts, "during the failover")
		if rerr := l.ReviveNode(ctx, from); rerr != nil {
			t.Error(rerr)
		}
		if serr := l.StartManager(leader); serr != nil {
			t.Error(serr)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("gateway %s killed, leader replica %d killed 200 ms later: IP Assigned elsewhere after %s, outage as the firewall saw it %s",
			from, leader, assigned.Round(time.Millisecond), back.Sub(firstFail).Round(time.Millisecond))
		if err := l.WaitHealthy(ctx, "gw-pay"); err != nil {
			t.Error(err)
		}
	})
}

// onlyEgressIP fails the test for every answered attempt the firewall saw from another address than
// payments' egress IP, and returns how many attempts got no answer.
func onlyEgressIP(t *testing.T, attempts []lab.Attempt, when string) int {
	t.Helper()
	for src, n := range lab.Sources(attempts) {
		if src != lab.PayIP {
			t.Errorf("the firewall saw %d requests from %s %s", n, src, when)
		}
	}
	unanswered := 0
	for _, a := range attempts {
		if !a.OK {
			unanswered++
		}
	}
	return unanswered
}
