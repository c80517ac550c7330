package agent_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/agent"
	"github.com/egressgw/egressgw/pkg/agenthealth"
	"github.com/egressgw/egressgw/pkg/nodeagent"
	"github.com/egressgw/egressgw/test/envtest"
	"github.com/egressgw/egressgw/test/netlab"
)

// cluster is a real API server, a netlab topology, and one in-process agent per netlab node, each
// bound to its node's namespace. The test plays the kubelet (Pod status) and the manager (gateway and
// policy status).
type cluster struct {
	t      testing.TB
	env    *envtest.Env
	topo   *netlab.Topology
	srv    *netlab.EchoServer
	cfg    nodeagent.Config
	mu     sync.Mutex
	agents map[string]*runningAgent
	// stateDir holds each node's agent state directory (stateDir/<node>), kept across restarts.
	stateDir string
	// peerPort is where every node's agent serves (health, announcements); 0 is agenthealth.DefaultPort.
	peerPort int
}

type runningAgent struct {
	a      *agent.Agent
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
	syncs  chan agent.SyncResult
	http   *http.Server // the agent's Handler on its node's InternalIP, as the DaemonSet serves it
}

var (
	egressIP  = netip.MustParseAddr("10.0.0.100")
	server    = netip.AddrPortFrom(netlab.ServerIP, netlab.EchoPort)
	altServer = netip.AddrPortFrom(netlab.AltServerIP, netlab.EchoPort)
)

const namespace = "pay"

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: programs VXLAN, routes, nftables and iptables in network namespaces (CI runs as root)")
	}
}

func newCluster(t testing.TB, nodes, pods int) *cluster {
	return newClusterUnder(t, netlab.Profile{}, nodes, pods)
}

// newClusterUnder builds the cluster's nodes under a netlab CNI profile (the zero Profile is the plain
// baseline).
func newClusterUnder(t testing.TB, profile netlab.Profile, nodes, pods int) *cluster {
	requireRoot(t)
	env := envtest.Start(t)
	ctx := context.Background()
	dir := t.TempDir()
	bin, err := netlab.BuildEchoServer(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	topo, err := netlab.Build(ctx, netlab.Spec{Nodes: nodes, PodsPerNode: pods, Profile: profile})
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, env: env, topo: topo, cfg: nodeagent.DefaultConfig(), agents: map[string]*runningAgent{}, stateDir: t.TempDir()}
	t.Cleanup(func() {
		c.stopAll()
		if c.srv != nil {
			_ = c.srv.Stop()
		}
		if err := topo.Close(); err != nil {
			t.Error(err)
		}
	})
	if c.srv, err = topo.StartEchoServer(ctx, bin, dir); err != nil {
		t.Fatal(err)
	}
	c.create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}})
	for _, n := range topo.Nodes {
		c.createNode(n)
		for i, p := range n.Pods {
			c.createPod(podName(n, i), n.Name, p.IP, map[string]string{"app": "web"})
		}
	}
	return c
}

func podName(n *netlab.Node, i int) string { return fmt.Sprintf("%s-pod%d", n.Name, i+1) }

func (c *cluster) create(obj client.Object) {
	c.t.Helper()
	if err := c.env.Client.Create(context.Background(), obj); err != nil {
		c.t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

func (c *cluster) createNode(n *netlab.Node) {
	c.t.Helper()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: map[string]string{}},
		Spec: corev1.NodeSpec{PodCIDR: n.PodCIDR.String(), PodCIDRs: []string{n.PodCIDR.String()}}}
	if n.Name != "node1" {
		node.Labels["egressgw.io/gateway"] = "true"
	}
	c.create(node)
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.IP.String()}}
	if err := c.env.Client.Status().Update(context.Background(), node); err != nil {
		c.t.Fatal(err)
	}
}

// createPod creates a Pod and writes its status as the kubelet does once the sandbox runs.
func (c *cluster) createPod(name, node string, ip netip.Addr, lbls map[string]string) *corev1.Pod {
	c.t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: lbls},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
	c.create(pod)
	if ip.IsValid() {
		pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip.String(), PodIPs: []corev1.PodIP{{IP: ip.String()}}}
		if err := c.env.Client.Status().Update(context.Background(), pod); err != nil {
			c.t.Fatal(err)
		}
	}
	return pod
}

func (c *cluster) setPodLabels(name string, lbls map[string]string) {
	c.t.Helper()
	pod := &corev1.Pod{}
	c.get(client.ObjectKey{Namespace: namespace, Name: name}, pod)
	pod.Labels = lbls
	if err := c.env.Client.Update(context.Background(), pod); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) setNodeLabels(name string, lbls map[string]string) {
	c.t.Helper()
	node := &corev1.Node{}
	c.get(client.ObjectKey{Name: name}, node)
	node.Labels = lbls
	if err := c.env.Client.Update(context.Background(), node); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) get(key client.ObjectKey, obj client.Object) {
	c.t.Helper()
	if err := c.env.Client.Get(context.Background(), key, obj); err != nil {
		c.t.Fatalf("get %s: %v", key, err)
	}
}

// placedPolicy creates gateway "gw" with its IP Assigned on node (and routed there by the fabric, when
// routed) and policy "db" selecting app=pay with its status naming node, as the manager leaves them.
func (c *cluster) placedPolicy(node *netlab.Node, routed bool) {
	c.t.Helper()
	c.createGateway("gw")
	c.placeIP("gw", node.Name, egressgwv1.AssignmentAssigned)
	if routed {
		if err := c.topo.RouteToNode(egressIP, node); err != nil {
			c.t.Fatal(err)
		}
	}
	c.createPolicy("db", "gw", nil)
	c.policyStatus("db", node.Name)
}

func (c *cluster) createGateway(name string) {
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: egressgwv1.EgressGatewaySpec{
			NodeSelector: egressgwv1.LabelSelector{MatchLabels: map[string]egressgwv1.LabelValue{"egressgw.io/gateway": "true"}},
			EgressIPs:    []egressgwv1.EgressIP{{IP: egressIP.String()}},
		}})
}

// placeIP writes the gateway's assignment as the manager does: state on node ("" with Unplaced).
func (c *cluster) placeIP(gateway, node string, state egressgwv1.AssignmentState) {
	c.t.Helper()
	gw := &egressgwv1.EgressGateway{}
	c.get(client.ObjectKey{Name: gateway}, gw)
	gw.Status.Assignments = []egressgwv1.IPAssignment{{IP: egressIP.String(), Node: node, State: state}}
	if err := c.env.Client.Status().Update(context.Background(), gw); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) createPolicy(name, gateway string, mutate func(*egressgwv1.EgressPolicySpec)) {
	p := &egressgwv1.EgressPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: egressgwv1.EgressPolicySpec{GatewayName: gateway,
			PodSelector: &egressgwv1.LabelSelector{MatchLabels: map[string]egressgwv1.LabelValue{"app": "pay"}}}}
	if mutate != nil {
		mutate(&p.Spec)
	}
	c.create(p)
}

func (c *cluster) editPolicy(name string, mutate func(*egressgwv1.EgressPolicySpec)) {
	c.t.Helper()
	p := &egressgwv1.EgressPolicy{}
	c.get(client.ObjectKey{Namespace: namespace, Name: name}, p)
	mutate(&p.Spec)
	if err := c.env.Client.Update(context.Background(), p); err != nil {
		c.t.Fatal(err)
	}
}

// policyStatus writes the policy's status as the manager does: Accepted, with the IP on node ("" for
// none).
func (c *cluster) policyStatus(name, node string) {
	c.t.Helper()
	p := &egressgwv1.EgressPolicy{}
	c.get(client.ObjectKey{Namespace: namespace, Name: name}, p)
	meta.SetStatusCondition(&p.Status.Conditions, metav1.Condition{Type: egressgwv1.ConditionAccepted, Status: metav1.ConditionTrue,
		Reason: "Accepted", Message: "test", ObservedGeneration: p.Generation})
	p.Status.EgressIP, p.Status.GatewayNode = "", node
	if node != "" {
		p.Status.EgressIP = egressIP.String()
	}
	if err := c.env.Client.Status().Update(context.Background(), p); err != nil {
		c.t.Fatal(err)
	}
}

// startAgent runs an agent for a netlab node until the test ends or stopAgent.
func (c *cluster) startAgent(n *netlab.Node) *runningAgent {
	c.t.Helper()
	cl, err := client.NewWithWatch(c.env.Config, client.Options{Scheme: c.env.Scheme})
	if err != nil {
		c.t.Fatal(err)
	}
	log := testLogger(c.t, n.Name)
	dp, err := nodeagent.New(c.cfg, n.NS.NL, n.NS, log)
	if err != nil {
		c.t.Fatal(err)
	}
	ra := &runningAgent{reg: prometheus.NewRegistry(), done: make(chan error, 1), syncs: make(chan agent.SyncResult, 1000)}
	ra.a, err = agent.New(cl, agent.Options{
		Node: n.Name, Datapath: dp, DatapathConfig: c.cfg, Netlink: n.NS.NL,
		ClusterCIDRs:   c.topo.ClusterRanges(),
		ResyncInterval: time.Hour, Log: log, Registry: ra.reg, HealthBindAddress: "0",
		StateDir: filepath.Join(c.stateDir, n.Name),
		DialPeer: dialFrom(n.NS), PeerPort: c.peerPort,
		OnSync: func(r agent.SyncResult) {
			select {
			case ra.syncs <- r:
			default:
			}
		},
	})
	if err != nil {
		c.t.Fatal(err)
	}
	ra.http = c.serveInNode(n, ra)
	ctx, cancel := context.WithCancel(context.Background())
	ra.cancel = cancel
	go func() { ra.done <- ra.a.Run(ctx) }()
	c.mu.Lock()
	c.agents[n.Name] = ra
	c.mu.Unlock()
	return ra
}

func (c *cluster) startAll() {
	for _, n := range c.topo.Nodes {
		c.startAgent(n)
	}
	for name, ra := range c.agents {
		select {
		case <-ra.a.Ready():
		case err := <-ra.done:
			c.t.Fatalf("agent of %s stopped: %v", name, err)
		case <-time.After(60 * time.Second):
			c.t.Fatalf("agent of %s not ready after 60s", name)
		}
	}
}

func (c *cluster) stopAgent(name string) {
	c.mu.Lock()
	ra := c.agents[name]
	delete(c.agents, name)
	c.mu.Unlock()
	if ra != nil {
		ra.cancel()
		if err := <-ra.done; err != nil {
			c.t.Errorf("agent of %s: %v", name, err)
		}
		_ = ra.http.Close()
	}
}

// dialFrom dials from inside ns, as a process of that node would.
func dialFrom(ns *netlab.Namespace) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (conn net.Conn, err error) {
		err = ns.Do(func() error {
			conn, err = (&net.Dialer{}).DialContext(ctx, network, address)
			return err
		})
		return conn, err
	}
}

// serveInNode serves the agent's Handler (health, metrics, the gateways' announcement endpoint) on
// the node's InternalIP and the manager's probe port, from inside the node's namespace.
func (c *cluster) serveInNode(n *netlab.Node, ra *runningAgent) *http.Server {
	c.t.Helper()
	var l net.Listener
	if err := n.NS.Do(func() (err error) {
		port := c.peerPort
		if port == 0 {
			port = agenthealth.DefaultPort
		}
		l, err = net.Listen("tcp", net.JoinHostPort(n.IP.String(), strconv.Itoa(port)))
		return err
	}); err != nil {
		c.t.Fatal(err)
	}
	srv := &http.Server{Handler: ra.a.Handler(ra.reg), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return srv
}

func (c *cluster) stopAll() {
	for _, n := range c.topo.Nodes {
		c.stopAgent(n.Name)
	}
}

// eventually polls cond every 100 ms until it holds; the deadline only keeps a broken test from hanging.
func (c *cluster) eventually(what string, cond func() (bool, string)) {
	c.t.Helper()
	last := ""
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
	}
	c.t.Fatalf("timed out waiting for %s; last: %s", what, last)
}

// expectSource waits until the echo server sees a request of pod from want.
func (c *cluster) expectSource(pod *netlab.Pod, to netip.AddrPort, want netip.Addr, what string) {
	c.t.Helper()
	c.eventually(what, func() (bool, string) {
		got, err := pod.NS.SourceOf(context.Background(), "udp", to, "probe")
		return err == nil && got == want, fmt.Sprintf("seen as %v (err %v), want %s", got, err, want)
	})
}

// metric scrapes one agent's /metrics and returns the value of the series with that name and labels.
func (c *cluster) metric(node, series string) float64 {
	c.t.Helper()
	c.mu.Lock()
	ra := c.agents[node]
	c.mu.Unlock()
	rec := httptest.NewRecorder()
	ra.a.Handler(ra.reg).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// dumps are the kernel state of a node the tests compare (egressgw's and everyone's).
func dumps(t testing.TB, ns *netlab.Namespace) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, cmd := range map[string][]string{
		"iptables-save": {"iptables-save"}, "ip rule": {"ip", "rule"},
		"ip route": {"ip", "route", "show", "table", "all"}, "ipset list": {"ipset", "list"},
		// egressgw's own rules and sets live in nftables; -s leaves out counters, which traffic moves.
		"nft list ruleset": {"nft", "-s", "list", "ruleset"},
	} {
		b, err := ns.Run(context.Background(), nil, cmd[0], cmd[1:]...)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = regexp.MustCompile(`(?m)^# (Generated|Completed) .*\n`).ReplaceAllString(string(b), "")
	}
	return out
}

func testLogger(t testing.TB, node string) *slog.Logger {
	var mu sync.Mutex
	done := false
	t.Cleanup(func() { mu.Lock(); done = true; mu.Unlock() })
	return slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			t.Logf("[%s] %s", node, strings.TrimSuffix(string(p), "\n"))
		}
		return len(p), nil
	}), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func objectMeta(ns, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name}
}
