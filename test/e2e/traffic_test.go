package e2e_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/egressgw/egressgw/test/lab"
	"github.com/egressgw/egressgw/test/netlab"
)

// TestFirewallSeesEachPolicy: selected pods on every node (gateways included) leave with their policy's
// egress IP, two gateways and two policies at once; unselected pods, a namespace no gateway admits,
// an excluded destination and a destination outside the policy leave with their node's address; TCP
// and UDP.
func TestFirewallSeesEachPolicy(t *testing.T) {
	l := needLab(t)
	checks := l.RunChecks(context.Background(), l.Checks())
	for _, c := range checks {
		if !c.OK() {
			t.Errorf("%s/%s on %s, %s to %s: the firewall saw %v (%v), want %s (%s)", c.Pod.Namespace, c.Pod.Name,
				c.Pod.Node.Name, c.Network, c.Dest, c.Got, c.Err, c.Want, c.Why)
		}
	}
	if len(checks) < 17 {
		t.Errorf("only %d checks: the lab's pods are missing", len(checks))
	}
}

// podStarts is how many selected pods TestPodStartsLeaveWithTheEgressIP starts, one after the other.
const podStarts = 200

// TestPodStartsLeaveWithTheEgressIP starts selected pods through the CNI chain on every node, each
// sending its first request the moment CNI ADD returns (before its Pod status reaches the API server) and
// retrying every 10 ms until answered. The firewall must see nothing from them but the egress IP.
func TestPodStartsLeaveWithTheEgressIP(t *testing.T) {
	l := needLab(t)
	ctx := context.Background()
	type start struct {
		token     string
		added     time.Time
		answered  time.Duration // from ADD returned to the first answer
		firstSent bool          // the very first request was answered
		err       error
	}
	var mu sync.Mutex
	var starts []*start
	var wg sync.WaitGroup
	for k := range podStarts {
		node := l.Topo.Nodes[k%len(l.Topo.Nodes)].Name
		s := &start{token: fmt.Sprintf("podstart-%d-%d", k, time.Now().UnixNano())}
		spec := lab.PodSpec{Namespace: "payments", Name: fmt.Sprintf("start-%d", k), Labels: map[string]string{"app": "pay"}, Node: node,
			AfterAdd: func(p *lab.Pod) {
				s.added = time.Now()
				wg.Add(1)
				go func() { defer wg.Done(); s.answered, s.firstSent, s.err = askUntilAnswered(ctx, p, s.token) }()
			}}
		p, err := l.StartPod(ctx, spec)
		if err != nil {
			t.Fatalf("pod start %d on %s: %v", k, node, err)
		}
		mu.Lock()
		starts = append(starts, s)
		mu.Unlock()
		wg.Wait()
		if err := l.StopPod(ctx, p); err != nil {
			t.Fatalf("pod stop %d: %v", k, err)
		}
	}
	var wrong, unanswered, firstDropped int
	var latencies []time.Duration
	for _, s := range starts {
		seen, err := l.Echo.Seen(s.token)
		if err != nil {
			t.Fatal(err)
		}
		for _, src := range seen {
			if !sameAddr(src, lab.PayIP) {
				wrong++
				t.Errorf("%s: the firewall saw %s", s.token, src)
			}
		}
		switch {
		case s.err != nil:
			unanswered++
			t.Errorf("%s: no answer: %v", s.token, s.err)
		default:
			latencies = append(latencies, s.answered)
			if !s.firstSent {
				firstDropped++
			}
		}
	}
	t.Logf("%d pod starts: %d requests seen with another source than %s, %d never answered; ADD -> first answer p50 %s p99 %s max %s; %d pods lost their first request (dropped, never seen)",
		len(starts), wrong, lab.PayIP, unanswered, lab.Percentile(latencies, 50), lab.Percentile(latencies, 99),
		lab.Percentile(latencies, 100), firstDropped)
}

func sameAddr(seen string, want netip.Addr) bool {
	ap, err := netip.ParseAddrPort(seen)
	return err == nil && ap.Addr() == want
}

// askUntilAnswered sends the same token every 10 ms (each from a new socket, 10 ms to answer) until the
// firewall answers, for at most 5 s.
func askUntilAnswered(ctx context.Context, p *lab.Pod, token string) (time.Duration, bool, error) {
	began := time.Now()
	var err error
	for i := 0; time.Since(began) < 5*time.Second; i++ {
		if _, err = p.Ask(ctx, "udp", netlab.ServerIP, token, 10*time.Millisecond); err == nil {
			return time.Since(began), i == 0, nil
		}
	}
	return 0, false, err
}

// TestNoRequestForbidden runs last: through every test before it, the components ran under the chart's
// ServiceAccounts and RBAC, and the API server refused none of their requests.
func TestNoRequestForbidden(t *testing.T) {
	l := needLab(t)
	lines, err := l.Forbidden()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range lines {
		t.Errorf("refused: %s", line)
	}
}
