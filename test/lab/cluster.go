package lab

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/test/netlab"
)

// SystemNamespace is where egressgw's components run and keep their leader election Lease.
const SystemNamespace = "egressgw-system"

// GatewayLabel marks the gateway nodes.
const GatewayLabel = "egressgw.io/gateway"

// The lab's egress IPs, free addresses of the gateways' subnet.
var (
	PayIP     = netip.MustParseAddr("10.0.0.50")
	ReportsIP = netip.MustParseAddr("10.0.0.51")
)

// Gateways and policies of the lab: two gateways on the same two nodes, each admitting one tenant;
// payments' policy sends everything but the firewall's second address through its gateway, reports'
// only the firewall's first address; sandbox is admitted by no gateway and its policy prefers its node's
// address to no traffic (whenUnavailable: UseNodeIP).
func (l *Lab) gateways() []*egressgwv1.EgressGateway {
	gw := func(name string, ip netip.Addr, admit map[string]egressgwv1.LabelValue) *egressgwv1.EgressGateway {
		return &egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: egressgwv1.EgressGatewaySpec{
			NodeSelector:      egressgwv1.LabelSelector{MatchLabels: map[string]egressgwv1.LabelValue{GatewayLabel: "true"}},
			EgressIPs:         []egressgwv1.EgressIP{{IP: ip.String()}},
			NamespaceSelector: egressgwv1.LabelSelector{MatchLabels: admit},
		}}
	}
	return []*egressgwv1.EgressGateway{
		gw("gw-pay", PayIP, map[string]egressgwv1.LabelValue{"egressgw.io/tenant": "payments"}),
		gw("gw-reports", ReportsIP, map[string]egressgwv1.LabelValue{"kubernetes.io/metadata.name": "reports"}),
	}
}

func (l *Lab) policies() []*egressgwv1.EgressPolicy {
	pol := func(ns, gateway, app string, mutate func(*egressgwv1.EgressPolicySpec)) *egressgwv1.EgressPolicy {
		p := &egressgwv1.EgressPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: app}, Spec: egressgwv1.EgressPolicySpec{
			GatewayName: gateway, PodSelector: &egressgwv1.LabelSelector{MatchLabels: map[string]egressgwv1.LabelValue{"app": egressgwv1.LabelValue(app)}}}}
		mutate(&p.Spec)
		return p
	}
	return []*egressgwv1.EgressPolicy{
		pol("payments", "gw-pay", "pay", func(s *egressgwv1.EgressPolicySpec) {
			s.ExcludedCIDRs = []string{netip.PrefixFrom(netlab.AltServerIP, 32).String()}
		}),
		pol("reports", "gw-reports", "report", func(s *egressgwv1.EgressPolicySpec) {
			s.DestinationCIDRs = []string{netip.PrefixFrom(netlab.ServerIP, 32).String()}
		}),
		pol("sandbox", "gw-pay", "pay", func(s *egressgwv1.EgressPolicySpec) { s.WhenUnavailable = egressgwv1.UnavailableUseNodeIP }),
	}
}

var tenantNamespaces = map[string]map[string]string{
	"payments": {"egressgw.io/tenant": "payments"},
	"reports":  nil,
	"sandbox":  nil,
}

// registerCluster creates what a cluster has before egressgw runs (namespaces, Nodes with their
// kubelets' Leases) and egressgw's gateways and policies.
func (l *Lab) registerCluster(ctx context.Context) error {
	objs := []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: SystemNamespace}}}
	for name, lbls := range tenantNamespaces {
		objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}})
	}
	for _, o := range objs {
		if err := l.Client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	l.kubelets = &kubelets{lab: l, alive: map[string]bool{}, stop: make(chan struct{})}
	for i, n := range l.Topo.Nodes {
		if err := l.registerNode(ctx, i, n); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		l.kubelets.alive[n.Name] = true
	}
	l.kubelets.start()
	l.onClose(l.kubelets.close)
	for _, g := range l.gateways() {
		if err := l.Client.Create(ctx, g); err != nil {
			return fmt.Errorf("gateway %s: %w", g.Name, err)
		}
	}
	for _, p := range l.policies() {
		if err := l.Client.Create(ctx, p); err != nil {
			return fmt.Errorf("policy %s/%s: %w", p.Namespace, p.Name, err)
		}
	}
	return nil
}

func (l *Lab) registerNode(ctx context.Context, i int, n *netlab.Node) error {
	// The labels a kubelet puts on its Node (the chart's agent and uninstall hook select kubernetes.io/os).
	lbls := map[string]string{"kubernetes.io/hostname": n.Name, "kubernetes.io/os": "linux", "kubernetes.io/arch": runtime.GOARCH,
		"topology.kubernetes.io/zone":   l.spec.zones()[zoneOf(i+1)],
		"topology.kubernetes.io/region": l.spec.region()}
	if gatewayNodes[n.Name] {
		lbls[GatewayLabel] = "true"
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: lbls}, Spec: corev1.NodeSpec{
		ProviderID: l.spec.providerID(i + 1),
		PodCIDR:    n.PodCIDR.String(), PodCIDRs: []string{n.PodCIDR.String()}}}
	if _, eks := l.spec.(*awsSpec); eks {
		node.Spec.PodCIDR, node.Spec.PodCIDRs = "", nil // EKS allocates no node CIDRs: pods take the ENIs' addresses
	}
	if err := l.Client.Create(ctx, node); err != nil {
		return err
	}
	now := metav1.Now()
	node.Status = corev1.NodeStatus{
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.IP.String()}, {Type: corev1.NodeHostName, Address: n.Name}},
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			Message: "kubelet is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now}},
	}
	if err := l.Client.Status().Update(ctx, node); err != nil {
		return err
	}
	return l.Client.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: corev1.NamespaceNodeLease, Name: n.Name},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(n.Name), LeaseDurationSeconds: ptr.To[int32](40),
			RenewTime: &metav1.MicroTime{Time: time.Now()}}})
}

// kubelets renew the Leases of the living nodes every 10 s, as a kubelet does.
type kubelets struct {
	lab   *Lab
	mu    sync.Mutex
	alive map[string]bool
	stop  chan struct{}
	done  sync.WaitGroup
}

func (k *kubelets) start() {
	k.done.Add(1)
	go func() {
		defer k.done.Done()
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-k.stop:
				return
			case <-tick.C:
				k.renew()
			}
		}
	}()
}

func (k *kubelets) renew() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	k.mu.Lock()
	var names []string
	for n, ok := range k.alive {
		if ok {
			names = append(names, n)
		}
	}
	k.mu.Unlock()
	for _, name := range names {
		var lease coordinationv1.Lease
		if err := k.lab.Client.Get(ctx, client.ObjectKey{Namespace: corev1.NamespaceNodeLease, Name: name}, &lease); err != nil {
			continue
		}
		lease.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
		_ = k.lab.Client.Update(ctx, &lease)
	}
}

func (k *kubelets) setAlive(name string, alive bool) {
	k.mu.Lock()
	k.alive[name] = alive
	k.mu.Unlock()
	if alive {
		k.renew()
	}
}

func (k *kubelets) close() error {
	close(k.stop)
	k.done.Wait()
	return nil
}
