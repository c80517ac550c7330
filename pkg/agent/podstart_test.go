package agent_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/egressgw/egressgw/test/cnilab"
	"github.com/egressgw/egressgw/test/netlab"
)

// podStartLab starts pods on one node the way containerd and the kubelet do: the Pod object exists
// (the scheduler bound it), libcni runs the reference bridge and host-local plugins and egressgw-cni
// against the node's running agent, the pod sends at once, and the kubelet reports the sandbox's IP
// only later.
type podStartLab struct {
	c      *cluster
	node   *netlab.Node
	chain  *cnilab.Chain
	prefix string
}

// Pod-start traffic: a datagram every startSendEvery for startSendFor after ADD returns, long enough to cover
// the kubelet's status write and the gateway's informer after it.
const (
	startSendEvery = 10 * time.Millisecond
	startSendFor   = 2 * time.Second
)

// kubeletStatusDelay is when the kubelet reports a new sandbox's IP: at its next sync of the pod, which
// the PLEG triggers when its relist (every second) sees the sandbox; uniform in [0, 1 s) after ADD.
func kubeletStatusDelay() time.Duration { return time.Duration(rand.Int64N(int64(time.Second))) }

func newPodStartLab(t *testing.T, c *cluster, n *netlab.Node) *podStartLab {
	t.Helper()
	bin := t.TempDir()
	if err := cnilab.BuildPlugins(context.Background(), bin); err != nil {
		t.Fatal(err)
	}
	// The chain's pods take the upper half of the node's pod block: the fabric routes the block to the
	// node, and the netlab pods keep the lower half.
	base := n.PodCIDR.Addr().As4()
	base[3] = 128
	prefix := netlab.RandomPrefix()
	chain, err := cnilab.NewChain(n.NS, cnilab.Config{
		BinDir: bin, StateDir: t.TempDir(), Bridge: prefix + "br", Subnet: netip.PrefixFrom(netip.AddrFrom4(base), 25),
		SocketPath: c.serveCNISocket(t, n.Name), AddTimeout: "10s",
	})
	if err != nil {
		t.Fatal(err)
	}
	return &podStartLab{c: c, node: n, chain: chain, prefix: prefix}
}

// podStart is one pod start as the test saw it.
type podStart struct {
	name     string
	selected bool
	ip       netip.Addr
	add      time.Duration   // libcni's ADD of the whole chain
	sentAt   []time.Duration // each datagram's send time after ADD returned
	status   time.Duration   // when the kubelet's status write returned, after ADD returned
}

// start runs one pod's life: Pod object, ADD, traffic while the kubelet writes the status, DEL, Pod
// deleted.
func (l *podStartLab) start(t *testing.T, i int, selected bool) podStart {
	ctx := context.Background()
	ps := podStart{name: fmt.Sprintf("start-%d", i), selected: selected}
	lbls := map[string]string{"app": "web"}
	if selected {
		lbls["app"] = "pay"
	}
	obj := l.c.createPod(ps.name, l.node.Name, netip.Addr{}, lbls)
	ns, err := netlab.NewNamespace(ctx, fmt.Sprintf("%s-c%d", l.prefix, i))
	if err != nil {
		t.Error(err)
		return ps
	}
	defer func() { _ = ns.Close() }()
	rt := cnilab.PodRuntime(fmt.Sprintf("%s-sandbox-%d", l.prefix, i), ns.Name, namespace, ps.name, string(obj.UID))
	begin := time.Now()
	res, err := l.chain.Add(ctx, rt)
	ps.add = time.Since(begin)
	if err != nil {
		t.Errorf("ADD of %s: %v", ps.name, err)
		return ps
	}
	added := time.Now()
	if ps.ip, err = cnilab.FirstIP(res); err != nil {
		t.Error(err)
		return ps
	}
	status := make(chan time.Duration, 1)
	go func() {
		time.Sleep(kubeletStatusDelay())
		l.c.kubeletWritesIP(ps.name, ps.ip)
		status <- time.Since(added)
	}()
	ps.sentAt = l.send(t, ns, ps.name, added)
	ps.status = <-status
	if err := l.chain.Del(ctx, rt); err != nil {
		t.Errorf("DEL of %s: %v", ps.name, err)
	}
	if err := l.c.env.Client.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: ps.name}},
		client.GracePeriodSeconds(0)); err != nil {
		t.Error(err)
	}
	return ps
}

// send sends "<name>-<k>" from one socket of the pod every startSendEvery for startSendFor and returns the send
// times after added.
func (l *podStartLab) send(t *testing.T, ns *netlab.Namespace, name string, added time.Time) []time.Duration {
	var conn net.Conn
	if err := ns.Do(func() (err error) {
		conn, err = net.Dial("udp", server.String())
		return err
	}); err != nil {
		t.Error(err)
		return nil
	}
	defer conn.Close()
	var sentAt []time.Duration
	for k := 0; time.Since(added) < startSendFor; k++ {
		at := time.Since(added)
		if _, err := fmt.Fprintf(conn, "%s-%d\n", name, k); err != nil {
			t.Errorf("%s: send: %v", name, err)
			return sentAt
		}
		sentAt = append(sentAt, at)
		time.Sleep(startSendEvery)
	}
	return sentAt
}

// runStarts starts n pods, parallel at a time, every fourth unselected.
func (l *podStartLab) runStarts(t *testing.T, n, parallel int) []podStart {
	out := make([]podStart, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for i := range next {
				out[i] = l.start(t, i, i%4 != 3)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// podStartOutcome is what the external server saw of one pod start.
type podStartOutcome struct {
	wrong     int           // datagrams seen with another source than the pod should have
	wrongSeen []string      // the first few of them: "datagram k from source"
	lost      int           // datagrams never seen before the first one seen
	firstSeen time.Duration // send time (after ADD) of the first datagram seen; -1 when none
}

func outcome(ps podStart, seen map[string][]string, want netip.Addr) podStartOutcome {
	o := podStartOutcome{firstSeen: -1}
	for k, at := range ps.sentAt {
		srcs := seen[fmt.Sprintf("%s-%d", ps.name, k)]
		for _, s := range srcs {
			if ap, err := netip.ParseAddrPort(s); err != nil || ap.Addr() != want {
				o.wrong++
				if len(o.wrongSeen) < 5 {
					o.wrongSeen = append(o.wrongSeen, fmt.Sprintf("datagram %d (sent %s after ADD) from %s", k, at.Round(time.Millisecond), s))
				}
			}
		}
		switch {
		case len(srcs) > 0 && o.firstSeen < 0:
			o.firstSeen = at
		case len(srcs) == 0 && o.firstSeen < 0:
			o.lost++
		}
	}
	return o
}

// TestPodStartsThroughTheReferencePlugins starts 200 pods on node1 through libcni with the reference
// bridge and host-local plugins and egressgw-cni chained after them, against node1's running agent and
// a real API server; node2 is the gateway. Each pod sends a datagram every 10 ms from the moment ADD
// returns, before the kubelet has reported its IP (0-1 s later, as the PLEG's relist does). The
// external server counts what it saw: every datagram of a selected pod, its first included, must
// arrive with the egress IP, and every datagram of an unselected one with node1's address. It reports
// the ADD latency, the time from ADD to the first datagram seen, and the datagrams the gateway dropped
// before it knew the pod.
func TestPodStartsThroughTheReferencePlugins(t *testing.T) {
	c := newCluster(t, 2, 0)
	n1, n2 := c.topo.Nodes[0], c.topo.Nodes[1]
	c.placedPolicy(n2, true)
	c.startAll()
	lab := newPodStartLab(t, c, n1)
	unmatchedBefore := c.metric("node2", `egressgw_agent_dropped_packets_total{reason="unmatched_tunnel"}`)

	const starts, parallel = 200, 5
	results := lab.runStarts(t, starts, parallel)
	time.Sleep(300 * time.Millisecond) // the last datagrams reach the server
	seen, err := c.srv.SeenAll()
	if err != nil {
		t.Fatal(err)
	}
	var adds, firsts, droppedFor []time.Duration
	wrong, lost, firstLost, sent, selected := 0, 0, 0, 0, 0
	for _, ps := range results {
		adds = append(adds, ps.add)
		want := n1.IP
		if ps.selected {
			want, selected = egressIP, selected+1
		}
		o := outcome(ps, seen, want)
		wrong, lost, sent = wrong+o.wrong, lost+o.lost, sent+len(ps.sentAt)
		if o.wrong > 0 {
			t.Errorf("pod %s (%s, selected %v, status written %s after ADD): %d datagrams seen with another source than %s: %v",
				ps.name, ps.ip, ps.selected, ps.status.Round(time.Millisecond), o.wrong, want, o.wrongSeen)
		}
		if o.firstSeen < 0 {
			t.Errorf("pod %s (%s, selected %v): none of its %d datagrams seen", ps.name, ps.ip, ps.selected, len(ps.sentAt))
			continue
		}
		if o.lost > 0 {
			firstLost++
			droppedFor = append(droppedFor, o.firstSeen)
		}
		if ps.selected {
			firsts = append(firsts, o.firstSeen)
		}
	}
	unmatched := c.metric("node2", `egressgw_agent_dropped_packets_total{reason="unmatched_tunnel"}`) - unmatchedBefore
	t.Logf("%d pod starts (%d selected) through bridge+host-local+egressgw-cni, %d datagrams: %d seen with a wrong source; "+
		"ADD p50 %s p99 %s; ADD returned -> first datagram seen (selected) p50 %s p99 %s; "+
		"%d pods lost their first datagrams (%d datagrams, %v dropped at the gateway as unmatched), for p50 %s p99 %s after ADD",
		starts, selected, sent, wrong, pct(adds, 50), pct(adds, 99), pct(firsts, 50), pct(firsts, 99),
		firstLost, lost, unmatched, pct(droppedFor, 50), pct(droppedFor, 99))
	ours, bridge := lab.chain.Exec.Durations("egressgw-cni", "ADD"), lab.chain.Exec.Durations("bridge", "ADD")
	t.Logf("of which egressgw-cni's ADD (process, socket round trip, node1 and the gateway programmed) p50 %s p99 %s; bridge (with host-local) p50 %s p99 %s; %d at a time",
		pct(ours, 50), pct(ours, 99), pct(bridge, 50), pct(bridge, 99), parallel)
	if wrong != 0 {
		t.Errorf("%d datagrams seen with a wrong source (selected pods must leave as %s, the others as %s)", wrong, egressIP, n1.IP)
	}
	if firstLost != 0 {
		t.Errorf("%d of %d pods lost their first datagrams (%d in all): the first packet a pod sends must be seen", firstLost, starts, lost)
	}
	if res := lab.chain.Reservations(); len(res) != 0 {
		t.Errorf("host-local still holds %v after every pod's DEL", res)
	}
	if _, err := os.Stat(filepath.Join("/run/netns", lab.prefix+"-c0")); err == nil {
		t.Error("a pod namespace outlived its pod")
	}
}
