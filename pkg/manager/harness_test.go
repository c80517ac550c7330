package manager_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/failover"
	"github.com/egressgw/egressgw/pkg/manager"
	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/test/envtest"
)

// cluster is a real API server plus a cloud and one health endpoint per node: the pieces the manager
// talks to. Node agents are real HTTP servers on 127.0.0.N, all on one port, as they would be on the
// nodes' InternalIPs.
type cluster struct {
	t      testing.TB
	env    *envtest.Env
	cloud  providers.Provider
	port   int
	mu     sync.Mutex
	agents map[string]*agent
	moves  chan manager.MoveRecord
	// apiConfig, when set, is how the managers reach the API server (through an apiProxy); the test's own
	// client always goes straight to it.
	apiConfig *rest.Config
}

// agent is a node agent's health endpoint: it counts the probes it answers and can fail some.
type agent struct {
	srv      *http.Server
	probes   atomic.Int64
	failNext atomic.Int64
}

func newCluster(t testing.TB, cloud providers.Provider) *cluster {
	env := envtest.Start(t)
	return &cluster{t: t, env: env, cloud: cloud, port: freePort(t), agents: map[string]*agent{},
		moves: make(chan manager.MoveRecord, 1000)}
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// addNode creates a Ready Node with an InternalIP of 127.0.0.<n> and starts its agent.
func (c *cluster) addNode(name string, n int, providerID string, lbls map[string]string) *corev1.Node {
	c.t.Helper()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
		Spec:       corev1.NodeSpec{ProviderID: providerID},
		Status: corev1.NodeStatus{
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("127.0.0.%d", n)}},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
	if err := c.env.Client.Create(context.Background(), node); err != nil {
		c.t.Fatalf("node %s: %v", name, err)
	}
	c.startAgent(name, n)
	return node
}

func (c *cluster) startAgent(name string, n int) {
	c.t.Helper()
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:%d", n, c.port))
	if err != nil {
		c.t.Fatalf("agent of %s: %v", name, err)
	}
	a := &agent{}
	a.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.probes.Add(1)
		if a.failNext.Add(-1) >= 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		a.failNext.Store(0)
	})}
	go a.srv.Serve(l)
	c.mu.Lock()
	c.agents[name] = a
	c.mu.Unlock()
	c.t.Cleanup(func() { a.srv.Close() })
}

func (c *cluster) agent(name string) *agent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.agents[name]
}

// killAgent stops a node's agent, as a crashed agent or a dead node looks to the probes.
func (c *cluster) killAgent(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.agents[name].srv.Close()
}

// startManager runs one manager replica until the test ends or stop is called.
func (c *cluster) startManager(id string, tune func(*manager.RunOptions)) (stop func(), done <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	o := testRunOptions(c.port, c.cloud, testLogger(c.t, id))
	o.OnMove = func(r manager.MoveRecord) { c.moves <- r }
	if tune != nil {
		tune(&o)
	}
	errc, finished := make(chan error, 1), make(chan struct{})
	cfg := c.env.Config
	if c.apiConfig != nil {
		cfg = c.apiConfig
	}
	go func() {
		err := manager.Run(ctx, cfg, o)
		if err != nil && ctx.Err() == nil {
			o.Log.Info("the replica stopped", "error", err.Error())
		}
		errc <- err
		close(finished)
	}()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-finished // done may have been read by the test
		}
	}
	c.t.Cleanup(stop)
	return stop, errc
}

// testRunOptions are the options of the tests' manager replicas: quick leader election and probes.
func testRunOptions(agentPort int, cloud providers.Provider, log logr.Logger) manager.RunOptions {
	o := manager.RunOptions{
		Config:   manager.DefaultConfig(),
		Provider: cloud,
		Log:      log,
		Registry: prometheus.NewRegistry(),
		LeaderElection: manager.LeaderElection{Namespace: "default", ID: "egressgw-manager", ReleaseOnCancel: true,
			LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 500 * time.Millisecond},
		MetricsAddr: "0", ProbeAddr: "0",
	}
	o.Config.AgentHealthPort = agentPort
	o.Config.Probe = failover.ProberConfig{Interval: 100 * time.Millisecond, Timeout: 100 * time.Millisecond}
	return o
}

// testLogger logs through t until the test ends, then drops lines, because the manager's goroutines
// may still log while the test is being torn down.
func testLogger(t testing.TB, id string) logr.Logger {
	var mu sync.Mutex
	done := false
	t.Cleanup(func() { mu.Lock(); done = true; mu.Unlock() })
	return funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			t.Logf("[%s] %s %s", id, prefix, args)
		}
	}, funcr.Options{Verbosity: 0, LogTimestamp: true})
}

// eventually polls cond until it holds; the deadline only keeps a broken test from hanging.
func (c *cluster) eventually(what string, cond func() (bool, string)) {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("timed out waiting for %s; last state: %s", what, last)
}

func (c *cluster) gateway(name string) *egressgwv1.EgressGateway {
	gw := &egressgwv1.EgressGateway{}
	if err := c.env.Client.Get(context.Background(), client.ObjectKey{Name: name}, gw); err != nil {
		c.t.Fatalf("gateway %s: %v", name, err)
	}
	return gw
}

func (c *cluster) policy(ns, name string) *egressgwv1.EgressPolicy {
	p := &egressgwv1.EgressPolicy{}
	if err := c.env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, p); err != nil {
		c.t.Fatalf("policy %s/%s: %v", ns, name, err)
	}
	return p
}

func (c *cluster) create(obj client.Object) {
	c.t.Helper()
	if err := c.env.Client.Create(context.Background(), obj); err != nil {
		c.t.Fatalf("create %s: %v", obj.GetName(), err)
	}
}

// events returns the messages of the Events about an object, "reason: message" each.
func (c *cluster) events(obj client.Object) []string {
	var list corev1.EventList
	if err := c.env.Client.List(context.Background(), &list, client.InNamespace(obj.GetNamespace())); err != nil {
		c.t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.InvolvedObject.UID == obj.GetUID() {
			out = append(out, e.Reason+": "+e.Message)
		}
	}
	return out
}

func hasEvent(events []string, fragments ...string) bool {
	for _, e := range events {
		all := true
		for _, f := range fragments {
			all = all && strings.Contains(e, f)
		}
		if all {
			return true
		}
	}
	return false
}

func assignment(gw *egressgwv1.EgressGateway, ip string) egressgwv1.IPAssignment {
	for _, a := range gw.Status.Assignments {
		if a.IP == ip {
			return a
		}
	}
	return egressgwv1.IPAssignment{}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func gatewaySpec(ips ...string) egressgwv1.EgressGatewaySpec {
	spec := egressgwv1.EgressGatewaySpec{
		NodeSelector: egressgwv1.LabelSelector{MatchLabels: map[string]egressgwv1.LabelValue{"egressgw.io/gateway": "true"}},
	}
	for _, ip := range ips {
		spec.EgressIPs = append(spec.EgressIPs, egressgwv1.EgressIP{IP: ip})
	}
	return spec
}

var gatewayLabels = map[string]string{"egressgw.io/gateway": "true"}

func (c *cluster) node(name string) *corev1.Node {
	n := &corev1.Node{}
	if err := c.env.Client.Get(context.Background(), client.ObjectKey{Name: name}, n); err != nil {
		c.t.Fatalf("node %s: %v", name, err)
	}
	return n
}

func internalIPOf(n *corev1.Node) (string, bool) {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address, true
		}
	}
	return "", false
}

func clientKey(name string) client.ObjectKey { return client.ObjectKey{Name: name} }
