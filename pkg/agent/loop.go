package agent

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/nodeagent"
)

// loop is the one worker: every wake-up coalesces all changes since the last sync into one
// DesiredState and one Datapath.Update (the fast path); the resync timer runs the full Apply, which
// reads the kernel and repairs it. A failed sync is retried with a backoff.
func (a *Agent) loop(ctx context.Context) {
	resync := time.NewTicker(a.opts.ResyncInterval)
	defer resync.Stop()
	backoff := time.Duration(0)
	for {
		full := false
		select {
		case <-ctx.Done():
			return
		case <-a.dirty:
		case <-resync.C:
			full = true
		}
		err := a.syncOnce(ctx, full)
		switch {
		case err == nil:
			backoff = 0
		case ctx.Err() != nil:
			return
		default:
			backoff = min(max(2*backoff, 200*time.Millisecond), 30*time.Second)
			time.AfterFunc(backoff, a.kick)
		}
	}
}

// syncOnce runs one sync unless a sync that started after the last change already succeeded (a CNI
// request may have done the work).
func (a *Agent) syncOnce(ctx context.Context, full bool) error {
	if err := a.lockSync(ctx); err != nil {
		return err
	}
	defer a.unlockSync()
	if !full && a.synced >= a.gen.Load() {
		return nil
	}
	return a.syncLocked(ctx, full)
}

// syncThrough makes sure a sync that saw change gen has succeeded, running one if needed; it is how a
// CNI request waits for its pod to be programmed.
func (a *Agent) syncThrough(ctx context.Context, gen uint64) error {
	if err := a.lockSync(ctx); err != nil {
		return err
	}
	defer a.unlockSync()
	if a.synced >= gen {
		return nil
	}
	return a.syncLocked(ctx, false)
}

func (a *Agent) lockSync(ctx context.Context) error {
	select {
	case a.syncSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the agent's sync: %w", context.Cause(ctx))
	}
}

func (a *Agent) unlockSync() { <-a.syncSem }

// syncLocked builds the view from the caches and programs it. It runs under syncSem.
func (a *Agent) syncLocked(ctx context.Context, full bool) error {
	r := SyncResult{Full: full, Started: time.Now()}
	gen := a.gen.Load()
	if full {
		a.overlay.prune(func(key string) bool { return a.cachedPod(key) != nil || a.cluster.get(key) != nil }, r.Started)
	}
	in := a.inputs()
	a.manageClusterPods(a.runCtx, in)
	view, problems := BuildView(in)
	r.Desired, r.Err = nodeagent.DesiredState(view, a.opts.DatapathConfig)
	if r.Err == nil {
		if full {
			r.Changes, r.Err = a.dp.Apply(ctx, r.Desired)
		} else {
			r.Changes, r.Err = a.dp.Update(ctx, r.Desired)
		}
	}
	r.Done = time.Now()
	a.record(r, view, problems)
	if r.Err == nil {
		a.synced = gen
		for _, d := range a.pending.programmed(r.Started, r.Done) {
			a.metrics.programmed.WithLabelValues(pathInformer).Observe(d.Seconds())
		}
	}
	if a.opts.OnSync != nil {
		a.opts.OnSync(r)
	}
	return r.Err
}

// record turns a sync's outcome into health, metrics and (on change) logs.
func (a *Agent) record(r SyncResult, view nodeagent.View, problems []Problem) {
	kind := "update"
	if r.Full {
		kind = "full"
	}
	a.metrics.applyDuration.WithLabelValues(kind).Observe(r.Done.Sub(r.Started).Seconds())
	a.health.applied(r.Err, a.uplinkIndex(r.Desired))
	if r.Err != nil {
		a.metrics.syncErrors.WithLabelValues(kind).Inc()
		a.log.Error("datapath sync failed; retrying", "kind", kind, "err", r.Err)
		return
	}
	if r.Changes.Total() > 0 && r.Full {
		a.log.Info("full resync repaired the datapath", "changes", fmt.Sprintf("%+v", r.Changes))
	}
	a.reports.report(problems, r.Desired.Warnings)
	a.metrics.observe(view, r.Desired, a.reports)
}

// inputs snapshots the caches for BuildView.
func (a *Agent) inputs() Inputs {
	in := Inputs{
		Node:         a.opts.Node,
		Nodes:        listAll[*corev1.Node](a.nodes),
		Policies:     listAll[*egressgwv1.EgressPolicy](a.policies),
		Gateways:     listAll[*egressgwv1.EgressGateway](a.gateways),
		ClusterCIDRs: a.opts.ClusterCIDRs,
	}
	if a.serviceCIDRs != nil {
		in.ServiceCIDRs = serviceRanges(listAll[*networkingv1.ServiceCIDR](a.serviceCIDRs))
	}
	cluster := a.cluster.synced()
	in.PodsIn = func(ns string) []*PodInfo {
		local := byNamespace[*PodInfo](a.localPods, ns)
		if cluster != nil {
			local = append(remotePods(byNamespace[*PodInfo](cluster, ns), a.opts.Node), local...)
		}
		return a.overlay.merge(ns, local)
	}
	return in
}

// remotePods drops this node's pods from a cluster-wide list. This node's pods always come from the
// local informer: the CNI overlay forgets a pod's ADD once that informer shows its IPs, and the
// cluster-wide informer's watch may deliver the same status later, which would leave the pod without
// an address, unsteered, in between (its packets left with the node's address).
func remotePods(pods []*PodInfo, node string) []*PodInfo {
	return slices.DeleteFunc(pods, func(p *PodInfo) bool { return p.NodeName == node })
}

// manageClusterPods starts the cluster-wide pod informer when this node becomes a gateway candidate
// and stops it when it stops being one.
func (a *Agent) manageClusterPods(ctx context.Context, in Inputs) {
	want := gatewayCandidate(a.selfNode(), in.Gateways)
	a.metrics.candidate.Set(map[bool]float64{true: 1}[want])
	switch running := a.cluster.running(); {
	case want && !running:
		if _, err := a.cluster.start(ctx, a.kick, a.log); err != nil {
			a.log.Error("cannot watch the cluster's pods; this gateway candidate serves its own pods only", "err", err)
		}
	case !want && running:
		a.cluster.stop()
		a.log.Info("no longer a gateway candidate: stopped watching the pods of the whole cluster")
	}
}

func (a *Agent) selfNode() *corev1.Node { return a.node(a.opts.Node) }

// node is the cached Node of that name, nil when unknown.
func (a *Agent) node(name string) *corev1.Node {
	obj, ok, err := a.nodes.GetStore().GetByKey(name)
	if err != nil || !ok {
		return nil
	}
	n, _ := obj.(*corev1.Node)
	return n
}

// serviceRanges are the IPv4 CIDRs of the cluster's ServiceCIDR objects.
func serviceRanges(objs []*networkingv1.ServiceCIDR) []netip.Prefix {
	var out []netip.Prefix
	for _, o := range objs {
		for _, c := range o.Spec.CIDRs {
			if p, err := netip.ParsePrefix(c); err == nil && p.Addr().Is4() {
				out = append(out, p.Masked())
			}
		}
	}
	return out
}
