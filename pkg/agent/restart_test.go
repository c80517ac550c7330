package agent_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egressgw/egressgw/pkg/cnirpc"
	"github.com/egressgw/egressgw/test/netlab"
)

// TestAgentRestartUnderTraffic restarts the source node's agent and then the gateway's while a selected
// pod sends a datagram every 20 ms: no datagram may be seen with another source, the restarted agents'
// first full apply must change nothing in the kernel, and the test reports how many datagrams were lost.
func TestAgentRestartUnderTraffic(t *testing.T) {
	c := newCluster(t, 3, 1)
	n1, n3 := c.topo.Nodes[0], c.topo.Nodes[2]
	c.placedPolicy(n3, true)
	c.setPodLabels(podName(n1, 0), map[string]string{"app": "pay"})
	c.startAll()
	c.expectSource(n1.Pods[0], server, egressIP, "before the restarts")

	ctx, stop := context.WithCancel(context.Background())
	var sent atomic.Int64
	done := make(chan error, 1)
	go func() { done <- sendEvery(ctx, n1.Pods[0], 20*time.Millisecond, &sent) }()
	time.Sleep(time.Second)
	for _, n := range []*netlab.Node{n1, n3} {
		c.stopAgent(n.Name)
		time.Sleep(200 * time.Millisecond) // traffic while no agent runs
		ra := c.startAgent(n)
		<-ra.a.Ready()
		if first := <-ra.syncs; first.Err != nil || first.Changes.Total() != 0 {
			t.Errorf("restarted agent of %s: first apply changed %+v (err %v), want nothing", n.Name, first.Changes, first.Err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	lost, longest, wrong := 0, 0, 0
	run := 0
	for i := range int(sent.Load()) {
		seen, err := c.srv.Seen(fmt.Sprintf("rs-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range seen {
			if ap, err := netip.ParseAddrPort(s); err != nil || ap.Addr() != egressIP {
				wrong++
			}
		}
		if len(seen) == 0 {
			lost++
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	if wrong != 0 {
		t.Errorf("%d datagrams seen with a source other than %s", wrong, egressIP)
	}
	t.Logf("restart under traffic: %d datagrams sent every 20 ms, %d lost, longest gap %d datagrams (%d ms)",
		sent.Load(), lost, longest, longest*20)
	if lost > 0 {
		t.Errorf("%d datagrams lost across the restarts, want 0: a restart must not touch the datapath", lost)
	}
}

// sendEvery sends "rs-<n>" datagrams from one socket of pod until ctx ends.
func sendEvery(ctx context.Context, pod *netlab.Pod, every time.Duration, sent *atomic.Int64) error {
	var conn net.Conn
	if err := pod.NS.Do(func() (err error) {
		conn, err = net.Dial("udp", server.String())
		return err
	}); err != nil {
		return err
	}
	defer conn.Close()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if _, err := fmt.Fprintf(conn, "rs-%d\n", sent.Load()); err != nil {
			return err
		}
		sent.Add(1)
	}
}

// TestAgentRestartBetweenADDAndStatus restarts the source node's agent after a selected pod's CNI ADD
// and before the kubelet reports its IP, while the pod sends a datagram every 20 ms: the restarted
// agent knows the pod only from its state file, and no datagram may be seen with the node's address
// (without the file, the first apply took the pod out of the steering sets and it left as node1).
func TestAgentRestartBetweenADDAndStatus(t *testing.T) {
	c := newCluster(t, 2, 0)
	n1, n2 := c.topo.Nodes[0], c.topo.Nodes[1]
	c.placedPolicy(n2, true)
	c.startAll()
	pod, err := c.topo.AddPod(context.Background(), n1)
	if err != nil {
		t.Fatal(err)
	}
	obj := c.createPod("window", n1.Name, netip.Addr{}, map[string]string{"app": "pay"})
	id := cnirpc.PodIdentity{Namespace: namespace, Name: "window", UID: string(obj.UID), ContainerID: "sandbox-window"}
	if err := c.serveCNI(t, n1.Name).Add(context.Background(), cnirpc.AddRequest{Pod: id, IPs: []netip.Addr{pod.IP}}); err != nil {
		t.Fatal(err)
	}

	ctx, stop := context.WithCancel(context.Background())
	var sent atomic.Int64
	done := make(chan error, 1)
	go func() { done <- sendEvery(ctx, pod, 20*time.Millisecond, &sent) }()
	time.Sleep(300 * time.Millisecond)
	c.stopAgent(n1.Name)
	ra := c.startAgent(n1)
	<-ra.a.Ready()
	time.Sleep(time.Second) // the restarted agent's first apply and whatever follows, before the kubelet
	c.kubeletWritesIP("window", pod.IP)
	time.Sleep(300 * time.Millisecond)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	seen, err := c.srv.SeenAll()
	if err != nil {
		t.Fatal(err)
	}
	byNode, lost := 0, 0
	for i := range int(sent.Load()) {
		srcs := seen[fmt.Sprintf("rs-%d", i)]
		if len(srcs) == 0 {
			lost++
		}
		for _, s := range srcs {
			if ap, err := netip.ParseAddrPort(s); err != nil || ap.Addr() != egressIP {
				byNode++
			}
		}
	}
	t.Logf("restart between ADD and the status write: %d datagrams sent every 20 ms, %d lost, %d seen with a source other than %s",
		sent.Load(), lost, byNode, egressIP)
	if byNode != 0 {
		t.Errorf("%d datagrams of the pod seen with a source other than %s (node1 is %s)", byNode, egressIP, n1.IP)
	}
	if sent.Load()-int64(lost) == 0 {
		t.Error("no datagram seen at all: the check proves nothing")
	}
}
