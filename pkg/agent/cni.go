package agent

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/egressgw/egressgw/pkg/cnirpc"
	"github.com/egressgw/egressgw/pkg/cniserver"
)

var _ cniserver.Programmer = (*Agent)(nil)

// PodAdded implements cniserver.Programmer for CNI ADD: the pod's IPs come from the plugin chain before the
// kubelet writes them to the Pod, so the agent records them in its overlay, reads the pod's labels (from
// its cache, or a GET when the informer has not seen the pod yet) and programs the node through the
// fast path before it returns: the pod's first packet finds its steering, or its fail-closed drop. It
// returns once the kernel has it, or an error when ctx (the plugin's timeout) ends first.
func (a *Agent) PodAdded(ctx context.Context, pod cnirpc.PodIdentity, ips []netip.Addr) error {
	start := time.Now()
	if err := a.waitReady(ctx); err != nil {
		return err
	}
	obj, err := a.podForCNI(ctx, pod)
	if err != nil {
		return err
	}
	if err := a.overlay.add(pod.ContainerID, obj, ips); err != nil {
		return fmt.Errorf("pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	// The gateways learn the pod while this node programs it: both are done when ADD returns.
	announced := make(chan struct{})
	go func() {
		defer close(announced)
		a.announce(ctx, obj, cnirpc.AddRequest{Pod: pod, IPs: ips})
	}()
	err = a.syncThrough(ctx, a.bump())
	<-announced
	if err != nil {
		return fmt.Errorf("programming pod %s/%s on node %s: %w", pod.Namespace, pod.Name, a.opts.Node, err)
	}
	a.metrics.programmed.WithLabelValues(pathCNI).Observe(time.Since(start).Seconds())
	return nil
}

// PodDeleted implements cniserver.Programmer for CNI DEL: the sandbox's IPs stop counting as the pod's at
// once (the IPAM plugin may give them to another pod), and the node is programmed before it returns.
func (a *Agent) PodDeleted(ctx context.Context, pod cnirpc.PodIdentity, ips []netip.Addr) error {
	if err := a.waitReady(ctx); err != nil {
		return err
	}
	key := pod.Namespace + "/" + pod.Name
	if !a.overlay.remove(key, pod.ContainerID, ips, a.cachedPod(key)) {
		return nil
	}
	if err := a.syncThrough(ctx, a.bump()); err != nil {
		return fmt.Errorf("removing pod %s/%s from node %s: %w", pod.Namespace, pod.Name, a.opts.Node, err)
	}
	return nil
}

// bump records a change made outside the informers and returns its generation.
func (a *Agent) bump() uint64 { return a.gen.Add(1) }

func (a *Agent) waitReady(ctx context.Context) error {
	select {
	case <-a.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("egressgw agent on node %s is still restoring its datapath (waiting for the API server's caches and the first full apply); the kubelet will retry: %w",
			a.opts.Node, context.Cause(ctx))
	}
}

// podForCNI is the pod a CNI request names, from the cache when it holds that pod (same UID when the
// runtime passed one), else from the API server.
func (a *Agent) podForCNI(ctx context.Context, id cnirpc.PodIdentity) (*PodInfo, error) {
	if p := a.cachedPod(id.Namespace + "/" + id.Name); p != nil && (id.UID == "" || string(p.UID) == id.UID) {
		return p, nil
	}
	p, err := a.getPod(ctx, id)
	if err == nil && p.NodeName != a.opts.Node {
		err = fmt.Errorf("pod %s/%s is scheduled on node %q, not on %s", id.Namespace, id.Name, p.NodeName, a.opts.Node)
	}
	return p, err
}

// getPod reads a pod from the API server, for a CNI request or an announcement about a pod the caches
// have not seen yet.
func (a *Agent) getPod(ctx context.Context, id cnirpc.PodIdentity) (*PodInfo, error) {
	p := &corev1.Pod{}
	err := a.c.Get(ctx, client.ObjectKey{Namespace: id.Namespace, Name: id.Name}, p)
	switch {
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("pod %s/%s is not in the API server; the agent cannot tell whether an EgressPolicy selects it", id.Namespace, id.Name)
	case err != nil:
		return nil, fmt.Errorf("reading pod %s/%s from the API server to decide whether an EgressPolicy selects it: %w", id.Namespace, id.Name, err)
	}
	return newPodInfo(p), nil
}

func (a *Agent) cachedPod(key string) *PodInfo {
	obj, ok, err := a.localPods.GetStore().GetByKey(key)
	if err != nil || !ok {
		return nil
	}
	p, _ := obj.(*PodInfo)
	return p
}
