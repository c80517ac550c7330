package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/egressgw/egressgw/pkg/agent"
	"github.com/egressgw/egressgw/pkg/agenthealth"
	"github.com/egressgw/egressgw/pkg/cnirpc"
	"github.com/egressgw/egressgw/test/netlab"
)

// TestGatewayTakesAnnouncementsOnlyFromThePodsNode: the gateway (node2) refuses an announcement of a
// node1 pod's IP that comes from node3, and from node1 for a pod of another node, leaving its sets as
// they were; it takes the one from node1 and has the IP in its SNAT sets when it answers.
func TestGatewayTakesAnnouncementsOnlyFromThePodsNode(t *testing.T) {
	c := newCluster(t, 3, 0)
	n1, n2, n3 := c.topo.Nodes[0], c.topo.Nodes[1], c.topo.Nodes[2]
	c.placedPolicy(n2, true)
	c.startAll()
	obj := c.createPod("fresh", n1.Name, netip.Addr{}, map[string]string{"app": "pay"})
	other := c.createPod("elsewhere", n3.Name, netip.Addr{}, map[string]string{"app": "pay"})
	ip := netip.MustParseAddr("10.244.1.77")
	req := func(name, uid string) cnirpc.AddRequest {
		return cnirpc.AddRequest{Pod: cnirpc.PodIdentity{Namespace: namespace, Name: name, UID: uid, ContainerID: "s-" + name}, IPs: []netip.Addr{ip}}
	}
	for _, tc := range []struct {
		what string
		from *netlab.Node
		req  cnirpc.AddRequest
		want int
		says string
	}{
		{"from another node", n3, req("fresh", string(obj.UID)), http.StatusForbidden, "the announcement came from " + n3.IP.String()},
		{"for another node's pod", n1, req("elsewhere", string(other.UID)), http.StatusForbidden, "runs on node " + strconv.Quote("node3")},
		{"with another UID", n1, req("fresh", "not-the-uid"), http.StatusNotFound, "not the announced"},
	} {
		status, msg := announceFrom(t, tc.from, n2, tc.req)
		if status != tc.want || !strings.Contains(msg, tc.says) {
			t.Errorf("announcement %s: %d %q, want %d saying %q", tc.what, status, msg, tc.want, tc.says)
		}
		if strings.Contains(dumps(t, n2.NS)["nft list ruleset"], ip.String()) {
			t.Fatalf("announcement %s put %s into the gateway's sets", tc.what, ip)
		}
	}
	if status, msg := announceFrom(t, n1, n2, req("fresh", string(obj.UID))); status != http.StatusNoContent {
		t.Fatalf("announcement from the pod's node: %d %s", status, msg)
	}
	if !strings.Contains(dumps(t, n2.NS)["nft list ruleset"], ip.String()) {
		t.Errorf("the gateway answered before its sets held %s", ip)
	}
}

// announceFrom posts an announcement from inside from's namespace to to's agent.
func announceFrom(t *testing.T, from, to *netlab.Node, req cnirpc.AddRequest) (int, string) {
	t.Helper()
	body, _ := json.Marshal(req)
	cl := &http.Client{Transport: &http.Transport{DialContext: dialFrom(from.NS)}}
	url := fmt.Sprintf("http://%s%s", net.JoinHostPort(to.IP.String(), strconv.Itoa(agenthealth.DefaultPort)), agent.PathAnnounce)
	resp, err := cl.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e cnirpc.ErrorResponse
	_ = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&e)
	return resp.StatusCode, e.Error
}

// TestFirstPacketAtTheGatewayUnderTheProfiles: under the AWS VPC CNI's profile (pods take VPC addresses:
// no per-node pod range a gateway could trust) and Cilium's (its marks, rules and masquerade), pods
// started through the CNI protocol, whose status the kubelet has not written yet, have their very first
// datagram seen with the egress IP: the gateway knows them from the announcement alone. (Without the
// announcement the gateway dropped them until the status came.)
func TestFirstPacketAtTheGatewayUnderTheProfiles(t *testing.T) {
	for _, p := range []netlab.Profile{
		{CNI: netlab.AWSVPCCNI(netlab.AWSOptions{}), Proxy: netlab.KubeProxyIPTables},
		{CNI: netlab.Cilium(), Proxy: netlab.KubeProxyIPTables},
	} {
		t.Run(p.Name(), func(t *testing.T) {
			firstPacketsAtTheGateway(t, newClusterUnder(t, p, 2, 0))
		})
	}
}

// TestAnnouncementsFollowTheHealthPort: with the chart's agent.healthPort changed, announcements go to
// the port the agents serve on (it failed while they were sent to agenthealth.DefaultPort).
func TestAnnouncementsFollowTheHealthPort(t *testing.T) {
	c := newClusterUnder(t, netlab.Profile{CNI: netlab.AWSVPCCNI(netlab.AWSOptions{}), Proxy: netlab.KubeProxyIPTables}, 2, 0)
	c.peerPort = 9600
	firstPacketsAtTheGateway(t, c)
}

// firstPacketsAtTheGateway starts pods on the first node whose first datagram, sent right after ADD and
// before the Pod's status names its IP, must reach the server from the egress IP held by the second.
func firstPacketsAtTheGateway(t *testing.T, c *cluster) {
	n1, n2 := c.topo.Nodes[0], c.topo.Nodes[1]
	c.placedPolicy(n2, true)
	c.startAll()
	cli := c.serveCNI(t, n1.Name)
	const starts = 5
	for i := range starts {
		pod, err := c.topo.AddPod(context.Background(), n1)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("first-%d", i)
		obj := c.createPod(name, n1.Name, netip.Addr{}, map[string]string{"app": "pay"})
		id := cnirpc.PodIdentity{Namespace: namespace, Name: name, UID: string(obj.UID), ContainerID: "s-" + name}
		if err := cli.Add(context.Background(), cnirpc.AddRequest{Pod: id, IPs: []netip.Addr{pod.IP}}); err != nil {
			t.Fatal(err)
		}
		if err := pod.NS.SendUDP(context.Background(), server, name); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	seen, err := c.srv.SeenAll()
	if err != nil {
		t.Fatal(err)
	}
	for i := range starts {
		name := fmt.Sprintf("first-%d", i)
		if srcs := seen[name]; len(srcs) != 1 || !strings.HasPrefix(srcs[0], egressIP.String()+":") {
			t.Errorf("first datagram of %s (its status not written yet): seen as %v, want once from %s", name, srcs, egressIP)
		}
	}
}

// TestADDWhileTheGatewayAgentIsDown: with the gateway's agent stopped (its datapath stays), ADD on the
// source node still succeeds, the failed announcement is counted, and the pod's datagrams are dropped at
// the gateway, never seen with another address, until the restarted gateway agent learns the pod.
func TestADDWhileTheGatewayAgentIsDown(t *testing.T) {
	c := newCluster(t, 2, 0)
	n1, n2 := c.topo.Nodes[0], c.topo.Nodes[1]
	c.placedPolicy(n2, true)
	c.startAll()
	cli := c.serveCNI(t, n1.Name)
	c.stopAgent(n2.Name)
	pod, err := c.topo.AddPod(context.Background(), n1)
	if err != nil {
		t.Fatal(err)
	}
	obj := c.createPod("orphan", n1.Name, netip.Addr{}, map[string]string{"app": "pay"})
	id := cnirpc.PodIdentity{Namespace: namespace, Name: "orphan", UID: string(obj.UID), ContainerID: "s-orphan"}
	began := time.Now()
	if err := cli.Add(context.Background(), cnirpc.AddRequest{Pod: id, IPs: []netip.Addr{pod.IP}}); err != nil {
		t.Fatalf("ADD with the gateway's agent down: %v", err)
	}
	t.Logf("ADD with the gateway's agent down took %s", time.Since(began).Round(time.Millisecond))
	if got := c.metric(n1.Name, `egressgw_agent_announcements_total{result="failed"}`); got != 1 {
		t.Errorf("failed announcements counted %v, want 1", got)
	}
	if err := pod.NS.SendUDP(context.Background(), server, "orphan-0"); err != nil {
		t.Fatal(err)
	}
	c.kubeletWritesIP("orphan", pod.IP)
	time.Sleep(500 * time.Millisecond)
	if seen, _ := c.srv.Seen("orphan-0"); len(seen) != 0 {
		t.Errorf("datagram of a pod the gateway does not know seen as %v, want dropped", seen)
	}
	ra := c.startAgent(n2)
	<-ra.a.Ready()
	c.expectSource(pod, server, egressIP, "once the gateway's agent is back")
}
