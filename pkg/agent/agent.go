// Package agent is egressgw's node agent: it watches the API server for what this node needs
// (EgressPolicies, EgressGateways, Nodes and Pods), turns it into the datapath's view (BuildView) and
// keeps the node's kernel programmed through pkg/nodeagent, fast on every change and fully on a timer.
// It also serves the chained CNI plugin (Programmer), health, readiness and metrics. It never writes to
// the API server: status is the manager's.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/agenthealth"
	"github.com/egressgw/egressgw/pkg/nodeagent"
)

// Options is everything an Agent needs besides the API server's client.
type Options struct {
	// Node is the name of this node's Node object.
	Node string
	// Datapath programs this node; DatapathConfig is the configuration it was built with.
	Datapath       *nodeagent.Datapath
	DatapathConfig nodeagent.Config
	// Netlink reads this node's links for the uplink health check (the datapath's own handle).
	Netlink *netlink.Handle
	// ClusterCIDRs are the pod, service and node ranges the operator gives; they are never steered.
	ClusterCIDRs []netip.Prefix
	// DetectServiceCIDRs watches the cluster's ServiceCIDR objects (networking.k8s.io/v1) and adds them to
	// the cluster ranges. Turn it off on clusters whose API does not serve them.
	DetectServiceCIDRs bool
	// ResyncInterval is the period of the full Apply that repairs what changed behind the agent's back.
	ResyncInterval time.Duration
	// Log receives the agent's structured logs.
	Log *slog.Logger
	// Registry receives the agent's metrics.
	Registry prometheus.Registerer
	// HealthBindAddress is where /healthz, /readyz and /metrics are served: "" is this node's InternalIP
	// on agenthealth.DefaultPort (where the manager probes), "0" serves nothing.
	HealthBindAddress string
	// Gatherer serves /metrics; the Registry when it is a *prometheus.Registry.
	Gatherer prometheus.Gatherer
	// OnSync, if set, is called after every sync (tests and benchmarks measure with it).
	OnSync func(SyncResult)
	// StateDir holds what the agent must remember across its own restarts: the CNI overlay, the IPs of
	// pods between their CNI ADD and the kubelet's status write (OverlayFileName). "" keeps it in
	// memory only. The agent creates the directory.
	StateDir string
	// PeerPort is the port other nodes' agents serve on (the DaemonSet's health port, the same on every
	// node), where new pods are announced to their gateways. 0 takes the port of HealthBindAddress when it
	// names one, else agenthealth.DefaultPort.
	PeerPort int
	// DialPeer connects to other nodes' agents (announcements of new pods to their gateways); nil dials
	// from the agent's own network namespace, the node's. Tests that run agents in-process for network
	// namespaces dial from the node's namespace with it.
	DialPeer func(ctx context.Context, network, address string) (net.Conn, error)
}

// SyncResult is one run of the loop.
type SyncResult struct {
	Full    bool
	Started time.Time
	Done    time.Time
	Desired *nodeagent.Desired
	Changes nodeagent.Changes
	Err     error
}

// Agent is one node's agent. Create it with New and run it with Run.
type Agent struct {
	opts Options
	log  *slog.Logger
	dp   *nodeagent.Datapath
	c    client.WithWatch

	policies, gateways, nodes, localPods, serviceCIDRs toolscache.SharedIndexInformer
	cluster                                            clusterPods

	dirty   chan struct{}
	gen     atomic.Uint64 // bumped by every change of the inputs
	syncSem chan struct{} // one sync at a time; a channel so that a CNI request can give up waiting
	synced  uint64        // the gen of the last successful sync (under syncSem)

	// runCtx is Run's context: informers started from a sync live as long as the agent, not as long as
	// the CNI request that happened to run that sync.
	runCtx context.Context

	overlay *cniOverlay
	peers   *http.Client // announcements to the gateways' agents
	pending pendingPods
	health  health
	metrics *metrics
	reports *reportLog
	ready   chan struct{}
}

// New validates o and builds the agent's informers; nothing runs until Run.
func New(c client.WithWatch, o Options) (*Agent, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if g, ok := o.Registry.(prometheus.Gatherer); ok && o.Gatherer == nil {
		o.Gatherer = g
	}
	if o.Gatherer == nil {
		o.Gatherer = prometheus.NewRegistry()
	}
	if o.PeerPort == 0 {
		o.PeerPort = portOf(o.HealthBindAddress)
	}
	a := &Agent{opts: o, log: o.Log.With("node", o.Node), dp: o.Datapath, c: c,
		dirty: make(chan struct{}, 1), syncSem: make(chan struct{}, 1), ready: make(chan struct{}),
		overlay: newCNIOverlay(), pending: pendingPods{since: map[string]time.Time{}}}
	a.reports = newReportLog(a.log)
	path, err := overlayPath(o.StateDir)
	if err != nil {
		return nil, err
	}
	a.overlay.persistTo(path, a.log)
	a.cluster.c = c
	a.cluster.observe = a.remotePodEvent
	a.peers = &http.Client{Transport: &http.Transport{DialContext: o.DialPeer, MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Minute}}
	if a.metrics, err = newMetrics(o.Registry, a.dp); err != nil {
		return nil, err
	}
	return a, a.buildInformers()
}

// portOf is the port of a health bind address, agenthealth.DefaultPort when it names none ("", "0").
func portOf(addr string) int {
	if _, p, err := net.SplitHostPort(addr); err == nil {
		if port, err := strconv.Atoi(p); err == nil && port > 0 {
			return port
		}
	}
	return agenthealth.DefaultPort
}

func (o Options) validate() error {
	var errs []error
	if o.PeerPort < 0 || o.PeerPort > 65535 {
		errs = append(errs, fmt.Errorf("peer port %d is not a TCP port", o.PeerPort))
	}
	if o.Node == "" {
		errs = append(errs, errors.New("node name is empty: set --node-name or $NODE_NAME (the downward API's spec.nodeName)"))
	}
	if o.Datapath == nil {
		errs = append(errs, errors.New("no datapath"))
	}
	if o.ResyncInterval <= 0 {
		errs = append(errs, fmt.Errorf("resync interval %s: want a positive duration", o.ResyncInterval))
	}
	return errors.Join(errs...)
}

func (a *Agent) buildInformers() error {
	var errs [5]error
	a.policies, errs[0] = policyInformer(a.c)
	a.gateways, errs[1] = gatewayInformer(a.c)
	a.nodes, errs[2] = nodeInformer(a.c)
	a.localPods, errs[3] = podInformer(a.c, a.opts.Node)
	if a.opts.DetectServiceCIDRs {
		a.serviceCIDRs, errs[4] = serviceCIDRInformer(a.c)
	}
	if err := errors.Join(errs[:]...); err != nil {
		return err
	}
	return a.watchAll()
}

// baseInformers are the informers every node runs.
func (a *Agent) baseInformers() []toolscache.SharedIndexInformer {
	infs := []toolscache.SharedIndexInformer{a.policies, a.gateways, a.nodes, a.localPods}
	if a.serviceCIDRs != nil {
		infs = append(infs, a.serviceCIDRs)
	}
	return infs
}

// Run restores before it serves: it starts the informers and waits for them, checks the node's marks,
// applies the full datapath (which diffs against what the kernel holds, so a restart changes nothing
// that is still right), then reports ready and runs the loop until ctx ends. It leaves the datapath in
// place when it returns: a restarted agent must not cut traffic.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.runCtx = ctx
	defer a.cluster.stop()
	// The pods CNI programmed before a restart and the kubelet has not reported yet: the first apply
	// must keep them steered.
	if n, err := a.overlay.load(); err != nil {
		a.log.Error("CNI overlay not restored: pods started just before this restart whose status the kubelet has not written yet are unknown until it does", "err", err)
	} else if n > 0 {
		a.log.Info("CNI overlay restored", "pods", n)
	}
	for _, inf := range a.baseInformers() {
		go inf.RunWithContext(ctx)
	}
	a.log.Info("waiting for the informer caches")
	if err := waitForSync(ctx, a.baseInformers()...); err != nil {
		return err
	}
	if err := a.serveHTTP(ctx, a.opts.HealthBindAddress, a.opts.Gatherer); err != nil {
		return err
	}
	if err := a.warmClusterPods(ctx); err != nil {
		return err
	}
	if err := a.checkMarks(ctx); err != nil {
		return err
	}
	if err := a.firstApply(ctx); err != nil {
		return err
	}
	close(a.ready)
	// The initial lists arrive whole (every Pod in full, before the transform strips it) and are garbage
	// once the caches hold the stripped copies; return those pages to the OS now rather than whenever
	// the scavenger gets to them, so that the agent's resident memory is what it keeps.
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	a.log.Info("datapath restored; serving", "heapInUseMiB", ms.HeapInuse>>20)
	a.loop(ctx)
	a.log.Info("stopping; the datapath stays in place")
	return nil
}

// warmClusterPods starts the cluster-wide pod informer before the first apply when this node is a
// gateway candidate, so that a restarted gateway's first Apply already has the remote pods its SNAT
// rules accept.
func (a *Agent) warmClusterPods(ctx context.Context) error {
	if !gatewayCandidate(a.selfNode(), listAll[*egressgwv1.EgressGateway](a.gateways)) {
		return nil
	}
	inf, err := a.cluster.start(ctx, a.kick, a.log)
	if err != nil {
		return err
	}
	return waitForSync(ctx, inf)
}

func (a *Agent) checkMarks(ctx context.Context) error {
	whole, err := a.dp.CheckMarks(ctx)
	for _, u := range whole {
		a.log.Warn("a rule on the node compares or sets the whole packet mark; egressgw's bits change its outcome for steered packets that reach it",
			"where", u.Where, "rule", u.Rule)
	}
	return err
}

// firstApply retries the full Apply until it succeeds or ctx ends; health says why meanwhile.
func (a *Agent) firstApply(ctx context.Context) error {
	backoff := time.Second
	for {
		if err := a.syncOnce(ctx, true); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// Ready is closed once the first full apply is done.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// kick records a change of the inputs and wakes the worker; many kicks before it runs make one sync.
func (a *Agent) kick() {
	a.gen.Add(1)
	select {
	case a.dirty <- struct{}{}:
	default:
	}
}

// clusterPods is the cluster-wide pod informer of a gateway candidate, started and stopped as the node
// becomes and stops being one.
type clusterPods struct {
	c       client.WithWatch
	observe func(old, new *PodInfo) // keeps the CNI overlay in step with the pods it announced
	mu      sync.Mutex
	inf     toolscache.SharedIndexInformer
	cancel  context.CancelFunc
}

// start starts the informer if it is not running and returns it.
func (cp *clusterPods) start(ctx context.Context, onChange func(), log *slog.Logger) (toolscache.SharedIndexInformer, error) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.inf != nil {
		return cp.inf, nil
	}
	inf, err := podInformer(cp.c, "")
	if err != nil {
		return nil, err
	}
	if _, err := inf.AddEventHandler(podHandler(onChange, cp.observe)); err != nil {
		return nil, fmt.Errorf("watch cluster pods: %w", err)
	}
	ictx, cancel := context.WithCancel(ctx)
	cp.inf, cp.cancel = inf, cancel
	go inf.RunWithContext(ictx)
	go func() {
		// Wake the worker once synced: until then the view reads this node's pods only.
		if toolscache.WaitForCacheSync(ictx.Done(), inf.HasSynced) {
			onChange()
		}
	}()
	log.Info("gateway candidate: watching the pods of the whole cluster")
	return inf, nil
}

func (cp *clusterPods) stop() {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.cancel != nil {
		cp.cancel()
	}
	cp.inf, cp.cancel = nil, nil
}

// synced returns the informer once it has synced, nil otherwise.
func (cp *clusterPods) synced() toolscache.SharedIndexInformer {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.inf != nil && cp.inf.HasSynced() {
		return cp.inf
	}
	return nil
}

// get is the cached pod of key, nil when the informer is not running or does not hold it.
func (cp *clusterPods) get(key string) *PodInfo {
	cp.mu.Lock()
	inf := cp.inf
	cp.mu.Unlock()
	if inf == nil {
		return nil
	}
	obj, ok, err := inf.GetStore().GetByKey(key)
	if err != nil || !ok {
		return nil
	}
	p, _ := obj.(*PodInfo)
	return p
}

func (cp *clusterPods) running() bool {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.inf != nil
}
