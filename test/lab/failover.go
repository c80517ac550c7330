package lab

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/test/netlab"
)

// ProbeInterval is how often the failover client sends a request: a client retrying every 50 ms.
const ProbeInterval = 50 * time.Millisecond

// Failover is one gateway death as the firewall and the API saw it. Times count from the kill.
type Failover struct {
	IP       netip.Addr
	From, To string
	// Outage is the firewall's view: from the first request that got no answer to the first that did.
	Outage time.Duration
	// Detected is when the gateway's status stopped naming the dead node as the IP's Assigned holder;
	// Moved when the cloud committed the IP to the new node's interface; Assigned when the status said so; Back
	// when the firewall saw the first request again.
	Detected, Moved, Assigned, Back time.Duration
	// Sources are the addresses the firewall saw from the client during the trial, with their counts:
	// one entry, the egress IP, is the only right answer.
	Sources map[netip.Addr]int
	Sent    int
}

func (f Failover) String() string {
	var seen []string
	answered := 0
	for src, n := range f.Sources {
		seen = append(seen, fmt.Sprintf("%s %d", src, n))
		answered += n
	}
	sort.Strings(seen)
	return fmt.Sprintf("%s %s -> %s: outage %s (status left %s at %s, the cloud moved it at %s, status Assigned at %s, firewall answered again at %s); %d requests, %d answered, from: %s",
		f.IP, f.From, f.To, ms(f.Outage), f.From, ms(f.Detected), ms(f.Moved), ms(f.Assigned), ms(f.Back), f.Sent, answered, strings.Join(seen, ", "))
}

func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }

// Attempt is one request of a Prober: when it was sent, and the source the firewall saw if it was answered.
type Attempt struct {
	At  time.Time
	Src netip.Addr
	OK  bool
}

// Prober sends a UDP request every ProbeInterval from a pod to the firewall until stopped, each from a
// new socket, as a client retrying would.
type Prober struct {
	mu       sync.Mutex
	attempts []Attempt
	stop     chan struct{}
	done     chan struct{}
}

// StartProber starts asking the firewall from p.
func StartProber(ctx context.Context, p *Pod) *Prober {
	pr := &Prober{stop: make(chan struct{}), done: make(chan struct{})}
	server := netip.AddrPortFrom(netlab.ServerIP, netlab.EchoPort)
	go func() {
		defer close(pr.done)
		tick := time.NewTicker(ProbeInterval)
		defer tick.Stop()
		for i := 0; ; i++ {
			at := time.Now()
			src, err := askOnce(ctx, p.NS, "udp", server, fmt.Sprintf("failover-%d-%d", at.UnixNano(), i), ProbeInterval)
			pr.mu.Lock()
			pr.attempts = append(pr.attempts, Attempt{At: at, Src: src, OK: err == nil})
			pr.mu.Unlock()
			select {
			case <-pr.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return pr
}

// Finish stops the prober and returns its attempts.
func (pr *Prober) Finish() []Attempt {
	close(pr.stop)
	<-pr.done
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return append([]Attempt(nil), pr.attempts...)
}

func (pr *Prober) backSince(t time.Time) (firstFail, back time.Time) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return BackSince(pr.attempts, t)
}

// BackSince finds, among attempts sent from t on, the first unanswered one and the first answered one
// after it: the edges of an outage (back is zero when none was answered again).
func BackSince(attempts []Attempt, t time.Time) (firstFail, back time.Time) {
	for _, a := range attempts {
		if a.At.Before(t) {
			continue
		}
		if !a.OK && firstFail.IsZero() {
			firstFail = a.At
		}
		if a.OK && !firstFail.IsZero() {
			return firstFail, a.At
		}
	}
	return firstFail, time.Time{}
}

// Sources counts the answered attempts by the source the firewall saw.
func Sources(attempts []Attempt) map[netip.Addr]int {
	out := map[netip.Addr]int{}
	for _, a := range attempts {
		if a.OK {
			out[a.Src]++
		}
	}
	return out
}

// LongestGap is the longest run of unanswered attempts, from the first of them to the next answer.
func LongestGap(attempts []Attempt) time.Duration {
	var longest time.Duration
	var since time.Time
	for _, a := range attempts {
		switch {
		case !a.OK && since.IsZero():
			since = a.At
		case a.OK && !since.IsZero():
			longest, since = max(longest, a.At.Sub(since)), time.Time{}
		}
	}
	return longest
}

// Holder is the node an egress IP of a gateway is Assigned to ("" when it is not Assigned).
func (l *Lab) Holder(ctx context.Context, gateway string, ip netip.Addr) (string, egressgwv1.AssignmentState, error) {
	var g egressgwv1.EgressGateway
	if err := l.Client.Get(ctx, client.ObjectKey{Name: gateway}, &g); err != nil {
		return "", "", err
	}
	for _, a := range g.Status.Assignments {
		if a.IP == ip.String() {
			if a.State != egressgwv1.AssignmentAssigned {
				return "", a.State, nil
			}
			return a.Node, a.State, nil
		}
	}
	return "", "", nil
}

// RunFailover kills the node holding the gateway's IP while client sends a request every 50 ms, measures
// the outage and its parts, and revives the node.
func (l *Lab) RunFailover(ctx context.Context, gateway string, ip netip.Addr, clientPod *Pod) (Failover, error) {
	f := Failover{IP: ip}
	var err error
	if f.From, _, err = l.Holder(ctx, gateway, ip); err != nil || f.From == "" {
		return f, fmt.Errorf("%s is not assigned before the trial (%v)", ip, err)
	}
	pr := StartProber(ctx, clientPod)
	time.Sleep(500 * time.Millisecond)
	killed := time.Now()
	if err := l.KillNode(f.From); err != nil {
		pr.Finish()
		return f, err
	}
	deadline := killed.Add(60 * time.Second)
	for time.Now().Before(deadline) {
		node, state, err := l.Holder(ctx, gateway, ip)
		now := time.Since(killed)
		if err == nil && f.Detected == 0 && (node != f.From || state != egressgwv1.AssignmentAssigned) {
			f.Detected = now
		}
		if err == nil && f.Assigned == 0 && state == egressgwv1.AssignmentAssigned && node != f.From {
			f.Assigned, f.To = now, node
		}
		if _, back := pr.backSince(killed); !back.IsZero() && f.Assigned != 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // the firewall must keep seeing the same address afterwards
	attempts := pr.Finish()
	firstFail, back := BackSince(attempts, killed)
	f.Sent, f.Sources = len(attempts), Sources(attempts)
	if !back.IsZero() {
		f.Outage, f.Back = back.Sub(firstFail), back.Sub(killed)
	}
	for _, e := range l.Cloud.Events(killed) {
		if e.IP == ip && e.Instance != "" && !sameInstance(e.Instance, l.spec.instance(l.nodeIndex(f.From))) {
			f.Moved = e.At.Sub(killed)
			break
		}
	}
	reviveErr := l.ReviveNode(ctx, f.From)
	if back.IsZero() || f.Assigned == 0 {
		return f, fmt.Errorf("no recovery within 60 s of killing %s: %s", f.From, f)
	}
	return f, reviveErr
}

func (l *Lab) nodeIndex(name string) int {
	for i, n := range l.Topo.Nodes {
		if n.Name == name {
			return i + 1
		}
	}
	return 0
}

// WaitHealthy waits until the gateway's status reports every node healthy again.
func (l *Lab) WaitHealthy(ctx context.Context, gateway string) error {
	return l.WaitFor(ctx, time.Minute, gateway+" with every node healthy", func() (bool, string) {
		var g egressgwv1.EgressGateway
		if err := l.Client.Get(ctx, client.ObjectKey{Name: gateway}, &g); err != nil {
			return false, err.Error()
		}
		for _, n := range g.Status.Nodes {
			if !n.Healthy {
				return false, n.Name + " unhealthy"
			}
		}
		return len(g.Status.Nodes) > 0, fmt.Sprintf("%d nodes", len(g.Status.Nodes))
	})
}

// Percentile is the p-th percentile (0..100) of ds, nearest rank.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(p/100*float64(len(s))+0.5) - 1
	return s[min(max(k, 0), len(s)-1)]
}

// Snapshot returns the attempts so far, the prober still running.
func (pr *Prober) Snapshot() []Attempt {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return append([]Attempt(nil), pr.attempts...)
}

// WaitMoved waits until the gateway's status has ip Assigned to a node other than from.
func (l *Lab) WaitMoved(ctx context.Context, gateway string, ip netip.Addr, from string, limit time.Duration) error {
	return l.WaitFor(ctx, limit, fmt.Sprintf("%s assigned to a node other than %s", ip, from), func() (bool, string) {
		node, state, err := l.Holder(ctx, gateway, ip)
		return err == nil && node != "" && node != from, fmt.Sprintf("%s %s %v", node, state, err)
	})
}

// WaitAnswered waits until the prober's requests are answered again after an outage that began at since.
func (l *Lab) WaitAnswered(ctx context.Context, pr *Prober, since time.Time, limit time.Duration) error {
	return l.WaitFor(ctx, limit, "the firewall to answer again", func() (bool, string) {
		_, back := BackSince(pr.Snapshot(), since)
		return !back.IsZero(), "no answer since " + since.Format(time.RFC3339Nano)
	})
}
