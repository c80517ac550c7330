package helmchart

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	authv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/failover"
	"github.com/egressgw/egressgw/pkg/manager"
	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/providers/fake"
	"github.com/egressgw/egressgw/test/envtest"
)

const releaseNamespace = "egressgw-system"

// TestManagerRunsUnderTheChartRBAC runs the real manager (pkg/manager.Run, the code the binary runs)
// against a real API server with a token of the chart's manager ServiceAccount, bound only by the
// chart's ClusterRole and Roles. With every rule it leads, places an IP (fake cloud), and writes all it
// writes: the finalizer, both kinds' status, events.k8s.io Events (a repeated one counted in its series)
// and leader-election Events, with no "forbidden" in its log. Then each verb of each rule is removed in
// turn: each removal must break one of those outcomes, so no verb is there for nothing.
func TestManagerRunsUnderTheChartRBAC(t *testing.T) {
	// client-go's own errors (an informer's refused list or watch, a refused Event) go to klog, which the
	// manager's binary writes to its log too: here to the running scenario's. Set once, before any use.
	klog.SetLogger(klogTo.logger())
	env := envtest.Start(t)
	r, err := Render(mustSet(t, awsOK), Options{Namespace: releaseNamespace})
	if err != nil {
		t.Fatal(err)
	}
	applyRBAC(t, env, r)
	cfg := serviceAccountConfig(t, env, "egressgw-manager")
	port := freeTCPPort(t)
	run := 0
	scenario := func(t *testing.T, wait time.Duration) []string {
		run++
		return runManagerScenario(t, env, cfg, port, run, wait)
	}
	if missing := scenario(t, 60*time.Second); len(missing) > 0 {
		t.Fatalf("under the chart's RBAC the manager did not: %s", strings.Join(missing, "; "))
	}
	for _, role := range []struct{ kind, name, namespace string }{{"ClusterRole", "egressgw-manager", ""},
		{"Role", "egressgw-manager-leader-election", releaseNamespace}, {"Role", "egressgw-manager-node-leases", "kube-node-lease"}} {
		full := roleRules(t, env, role.kind, role.namespace, role.name)
		forEachVerb(full, func(rule rbacv1.PolicyRule, verb string, reduced []rbacv1.PolicyRule) {
			t.Run(fmt.Sprintf("without %s %v %v %s", role.kind, rule.APIGroups, rule.Resources, verb), func(t *testing.T) {
				setRoleRules(t, env, role.kind, role.namespace, role.name, reduced)
				defer setRoleRules(t, env, role.kind, role.namespace, role.name, full)
				if missing := scenario(t, 8*time.Second); len(missing) == 0 {
					t.Errorf("the manager did everything without this verb: it is not needed")
				} else {
					t.Logf("without it: %s", strings.Join(missing, "; "))
				}
			})
		})
	}
}

// forEachVerb calls fn for every verb of every rule, with the rules less that one verb (a rule left with
// no verb dropped).
func forEachVerb(rules []rbacv1.PolicyRule, fn func(rule rbacv1.PolicyRule, verb string, reduced []rbacv1.PolicyRule)) {
	for i, rule := range rules {
		for _, verb := range rule.Verbs {
			reduced := slices.Clone(rules)
			less := rule.DeepCopy()
			less.Verbs = slices.DeleteFunc(slices.Clone(rule.Verbs), func(v string) bool { return v == verb })
			if len(less.Verbs) == 0 {
				reduced = slices.Delete(reduced, i, i+1)
			} else {
				reduced[i] = *less
			}
			fn(rule, verb, reduced)
		}
	}
}

// runManagerScenario starts a manager replica, a gateway node with a healthy agent endpoint, a gateway
// and a policy (names unique to run) and returns what the manager failed to do within wait.
func runManagerScenario(t *testing.T, env *envtest.Env, cfg *rest.Config, port, run int, wait time.Duration) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	node, ip := fmt.Sprintf("gw-%d", run), fmt.Sprintf("10.0.1.%d", 100+run)
	nodeIP := fmt.Sprintf("127.0.0.%d", 10+run)
	serveHealth(t, nodeIP, port)
	cloud := fake.New()
	cloud.AddNode(providers.Node{Name: node, ProviderID: "aws:///zone-a/i-" + node}, providers.NodeInfo{
		Instance: "i-" + node, Interface: "eni-" + node, Zone: "zone-a", SubnetID: "subnet-1",
		Subnet: netip.MustParsePrefix("10.0.1.0/24"), Capacity: 10, Addresses: []netip.Addr{netip.MustParseAddr(fmt.Sprintf("10.0.1.%d", run))},
	})
	gw, ns := fmt.Sprintf("rbac-%d", run), fmt.Sprintf("team-%d", run)
	label := map[string]string{"egressgw.io/gateway": gw}
	mustCreate(t, env, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node, Labels: label},
		Spec: corev1.NodeSpec{ProviderID: "aws:///zone-a/i-" + node}})
	setNodeStatus(t, env, node, nodeIP)
	mustCreate(t, env, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	mustCreate(t, env, &egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: gw}, Spec: egressgwv1.EgressGatewaySpec{
		NodeSelector: egressgwv1.LabelSelector{MatchLabels: map[string]egressgwv1.LabelValue{"egressgw.io/gateway": egressgwv1.LabelValue(gw)}},
		EgressIPs:    []egressgwv1.EgressIP{{IP: ip}}}})
	mustCreate(t, env, &egressgwv1.EgressPolicy{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: ns}, Spec: egressgwv1.EgressPolicySpec{GatewayName: gw}})
	defer repeatEvent(t, env, cfg, gw)()
	logs := &forbiddenLog{}
	klogTo.set(logs)
	defer klogTo.set(nil)
	o := manager.RunOptions{Config: manager.DefaultConfig(), Provider: cloud, Log: logs.logger(), Registry: prometheus.NewRegistry(),
		LeaderElection: manager.LeaderElection{Namespace: releaseNamespace, ID: fmt.Sprintf("egressgw-manager-%d", run), ReleaseOnCancel: true,
			LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 500 * time.Millisecond},
		MetricsAddr: "0", ProbeAddr: "0"}
	o.Config.AgentHealthPort = port
	o.Config.Probe = failover.ProberConfig{Interval: 100 * time.Millisecond, Timeout: 100 * time.Millisecond}
	done := make(chan error, 1)
	go func() { done <- manager.Run(ctx, cfg, o) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("the manager did not stop within 30 s")
		}
	}()
	checks := append(managerOutcomes(env, o.LeaderElection.ID, gw, ns, node, ip), informerCalls(t, cfg))
	var missing []string
	deadline := time.Now().Add(wait)
	for {
		missing = missing[:0]
		for _, c := range checks {
			if !c.done() {
				missing = append(missing, c.what)
			}
		}
		// A refused request is the answer already: no need to wait for the rest.
		if len(missing) == 0 || time.Now().After(deadline) || len(logs.lines()) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if f := logs.lines(); len(f) > 0 {
		missing = append(missing, "run without forbidden errors: "+f[0])
	}
	return missing
}

type outcome struct {
	what string
	done func() bool
}

// managerOutcomes are the writes the manager makes in the scenario, each read back as the admin.
func managerOutcomes(env *envtest.Env, lease, gw, ns, node, ip string) []outcome {
	ctx := context.Background()
	c := env.Client
	return []outcome{
		{"hold the leader-election Lease", func() bool {
			var l coordinationv1.Lease
			return c.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: lease}, &l) == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != ""
		}},
		{"record the leader election as a core Event", func() bool {
			var evs corev1.EventList
			_ = c.List(ctx, &evs, client.InNamespace(releaseNamespace))
			return slices.ContainsFunc(evs.Items, func(e corev1.Event) bool { return e.InvolvedObject.Name == lease })
		}},
		{"put the release finalizer on the gateway", func() bool {
			var g egressgwv1.EgressGateway
			return c.Get(ctx, client.ObjectKey{Name: gw}, &g) == nil && slices.Contains(g.Finalizers, manager.FinalizerReleaseIPs)
		}},
		{"write the gateway's status (IP assigned)", func() bool {
			var g egressgwv1.EgressGateway
			if c.Get(ctx, client.ObjectKey{Name: gw}, &g) != nil {
				return false
			}
			return slices.ContainsFunc(g.Status.Assignments, func(a egressgwv1.IPAssignment) bool {
				return a.IP == ip && a.Node == node && a.State == egressgwv1.AssignmentAssigned
			})
		}},
		{"write the policy's status (egress IP)", func() bool {
			var p egressgwv1.EgressPolicy
			return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "p"}, &p) == nil && p.Status.EgressIP == ip
		}},
		{"record the move as an events.k8s.io Event", func() bool {
			var evs eventsv1.EventList
			_ = c.List(ctx, &evs)
			return slices.ContainsFunc(evs.Items, func(e eventsv1.Event) bool { return e.Regarding.Name == gw && e.Reason != repeatedReason })
		}},
		{"count a repeated events.k8s.io Event in its series", func() bool {
			var evs eventsv1.EventList
			_ = c.List(ctx, &evs)
			return slices.ContainsFunc(evs.Items, func(e eventsv1.Event) bool {
				return e.Regarding.Name == gw && e.Reason == repeatedReason && e.Series != nil && e.Series.Count >= 2
			})
		}},
	}
}

// forbiddenLog collects the manager's log lines that report a refused API call.
type forbiddenLog struct {
	mu    sync.Mutex
	found []string
}

func (f *forbiddenLog) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		if strings.Contains(args, "forbidden") {
			f.add(args)
		}
	}, funcr.Options{Verbosity: 0})
}

// klogTo forwards klog's lines to the forbiddenLog of the running scenario (klog's logger can only be
// set once, before any use).
var klogTo = &klogForward{}

type klogForward struct {
	mu  sync.Mutex
	log *forbiddenLog
}

func (k *klogForward) set(f *forbiddenLog) {
	k.mu.Lock()
	k.log = f
	k.mu.Unlock()
}

func (k *klogForward) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		k.mu.Lock()
		f := k.log
		k.mu.Unlock()
		if f != nil && strings.Contains(args, "forbidden") {
			f.add(args)
		}
	}, funcr.Options{Verbosity: 0})
}

func (f *forbiddenLog) add(line string) {
	f.mu.Lock()
	f.found = append(f.found, line)
	f.mu.Unlock()
}

func (f *forbiddenLog) lines() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.found)
}

// applyRBAC creates the release namespace and the chart's ServiceAccounts, roles and bindings for real.
func applyRBAC(t *testing.T, env *envtest.Env, r *Rendered) {
	t.Helper()
	mustCreate(t, env, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: releaseNamespace}})
	kinds := []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
	n := 0
	for _, o := range r.Objects {
		if slices.Contains(kinds, o.GetKind()) {
			if err := env.Client.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(o), client.FieldOwner("helm")); err != nil {
				t.Fatalf("apply %s %s: %v", o.GetKind(), o.GetName(), err)
			}
			n++
		}
	}
	if n < 8 {
		t.Fatalf("applied %d RBAC objects; want both components' ServiceAccounts, roles and bindings", n)
	}
}

// serviceAccountConfig is a client configuration that authenticates with a token of the chart's
// ServiceAccount (TokenRequest), as the pod's projected token would.
func serviceAccountConfig(t *testing.T, env *envtest.Env, sa string) *rest.Config {
	t.Helper()
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cs.CoreV1().ServiceAccounts(releaseNamespace).CreateToken(context.Background(), sa, &authv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s: %v", sa, err)
	}
	cfg := rest.AnonymousClientConfig(env.Config)
	cfg.BearerToken = tok.Status.Token
	return cfg
}

func roleRules(t *testing.T, env *envtest.Env, kind, namespace, name string) []rbacv1.PolicyRule {
	t.Helper()
	if kind == "ClusterRole" {
		var cr rbacv1.ClusterRole
		if err := env.Client.Get(context.Background(), client.ObjectKey{Name: name}, &cr); err != nil {
			t.Fatal(err)
		}
		return cr.Rules
	}
	var r rbacv1.Role
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, &r); err != nil {
		t.Fatal(err)
	}
	return r.Rules
}

func setRoleRules(t *testing.T, env *envtest.Env, kind, namespace, name string, rules []rbacv1.PolicyRule) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("rbac.authorization.k8s.io/v1")
	u.SetKind(kind)
	u.SetName(name)
	if kind == "Role" {
		u.SetNamespace(namespace)
	}
	ctx := context.Background()
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(u), u); err != nil {
		t.Fatal(err)
	}
	var raw []any
	for _, r := range rules {
		m := map[string]any{}
		m["apiGroups"], m["resources"], m["verbs"] = toAny(r.APIGroups), toAny(r.Resources), toAny(r.Verbs)
		if len(r.ResourceNames) > 0 {
			m["resourceNames"] = toAny(r.ResourceNames)
		}
		raw = append(raw, m)
	}
	u.Object["rules"] = raw
	if err := env.Client.Update(ctx, u); err != nil {
		t.Fatal(err)
	}
	// RBAC changes reach the authorizer through its informer: give it a moment.
	time.Sleep(300 * time.Millisecond)
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func mustCreate(t *testing.T, env *envtest.Env, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

func setNodeStatus(t *testing.T, env *envtest.Env, name, ip string) {
	t.Helper()
	var n corev1.Node
	if err := env.Client.Get(context.Background(), client.ObjectKey{Name: name}, &n); err != nil {
		t.Fatal(err)
	}
	n.Status = corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}},
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}
	if err := env.Client.Status().Update(context.Background(), &n); err != nil {
		t.Fatal(err)
	}
}

// serveHealth answers the manager's probes on ip:port, as a healthy node agent does.
func serveHealth(t *testing.T, ip string, port int) {
	t.Helper()
	l, err := net.Listen("tcp", fmt.Sprintf("%s:%d", ip, port))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// repeatedReason is the reason of the Event repeatEvent records twice.
const repeatedReason = "RBACCheckRepeated"

// repeatEvent records one Event about the gateway twice, through the events library and sink the
// manager's recorder uses (controller-runtime's GetEventRecorder: client-go tools/events on events.k8s.io),
// with the manager's token: the second is the same event again, which the library counts in the first's
// series with a PATCH. The manager repeats Events so in a cluster (a gateway's IPs moving to the same node
// twice before its next status write), which a short scenario does not reliably do. It returns the stop.
func repeatEvent(t *testing.T, env *envtest.Env, cfg *rest.Config, gateway string) func() {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var gw egressgwv1.EgressGateway
	if err := env.Client.Get(context.Background(), client.ObjectKey{Name: gateway}, &gw); err != nil {
		t.Fatal(err)
	}
	scheme, err := envtest.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	b := events.NewBroadcaster(&events.EventSinkImpl{Interface: cs.EventsV1()})
	stop := make(chan struct{})
	b.StartRecordingToSink(stop)
	rec := b.NewRecorder(scheme, manager.FieldOwner)
	done := make(chan struct{})
	go func() {
		defer close(done)
		rec.Eventf(&gw, nil, corev1.EventTypeNormal, repeatedReason, "Check", "recorded twice")
		select {
		case <-time.After(time.Second): // the first is created before the second patches it
		case <-stop:
			return
		}
		rec.Eventf(&gw, nil, corev1.EventTypeNormal, repeatedReason, "Check", "recorded twice")
	}()
	return func() {
		close(stop)
		<-done
		b.Shutdown()
	}
}

// managerInformers are what the manager's informers cache (pkg/manager/run.go, watch.go): each lists
// and watches its resource. A scenario that starts with its objects in place is served by the first
// list alone, and client-go streams that list over the watch where the API server can (1.32 on) while
// it lists on the older servers the chart supports (>= 1.29): so the calls are made as such.
var managerInformers = []struct {
	resource  schema.GroupVersionResource
	namespace string
}{
	{schema.GroupVersionResource{Group: "egressgw.io", Version: "v1alpha1", Resource: "egressgateways"}, ""},
	{schema.GroupVersionResource{Group: "egressgw.io", Version: "v1alpha1", Resource: "egresspolicies"}, ""},
	{schema.GroupVersionResource{Version: "v1", Resource: "nodes"}, ""},
	{schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, ""},
	{schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}, corev1.NamespaceNodeLease},
}

// informerCalls is the outcome "list and watch what its informers cache", each call made with the
// manager's token.
func informerCalls(t *testing.T, cfg *rest.Config) outcome {
	t.Helper()
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return outcome{"list and watch what its informers cache", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, inf := range managerInformers {
			ri := dc.Resource(inf.resource).Namespace(inf.namespace)
			if _, err := ri.List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
				return false
			}
			w, err := ri.Watch(ctx, metav1.ListOptions{})
			if err != nil {
				return false
			}
			w.Stop()
		}
		return true
	}}
}
