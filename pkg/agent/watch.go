package agent

import (
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
)

// watchAll wakes the loop on every change of the inputs. Changes that BuildView cannot see (a Node's
// heartbeat, a pod's container states) are filtered out, so a busy cluster does not keep the loop busy.
func (a *Agent) watchAll() error {
	all := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { a.kick() },
		UpdateFunc: func(any, any) { a.kick() },
		DeleteFunc: func(any) { a.kick() },
	}
	nodes := toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { a.kick() },
		UpdateFunc: func(o, n any) {
			on, ok1 := o.(*corev1.Node)
			nn, ok2 := n.(*corev1.Node)
			if !ok1 || !ok2 || nodeChanged(on, nn) {
				a.kick()
			}
		},
		DeleteFunc: func(any) { a.kick() },
	}
	handlers := []struct {
		inf toolscache.SharedIndexInformer
		h   toolscache.ResourceEventHandler
	}{
		{a.policies, all}, {a.gateways, all}, {a.nodes, nodes},
		{a.localPods, podHandler(a.kick, a.localPodEvent)},
	}
	if a.serviceCIDRs != nil {
		handlers = append(handlers, struct {
			inf toolscache.SharedIndexInformer
			h   toolscache.ResourceEventHandler
		}{a.serviceCIDRs, all})
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return fmt.Errorf("watch: %w", err)
		}
	}
	return nil
}

// podHandler calls onChange for pod changes BuildView can see, and observe (when set) with the old and
// new pod (nil when absent) before it.
func podHandler(onChange func(), observe func(old, new *PodInfo)) toolscache.ResourceEventHandler {
	seen := func(o, n *PodInfo) {
		if observe != nil {
			observe(o, n)
		}
		onChange()
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if p, ok := obj.(*PodInfo); ok {
				seen(nil, p)
			}
		},
		UpdateFunc: func(o, n any) {
			op, ok1 := o.(*PodInfo)
			np, ok2 := n.(*PodInfo)
			if ok1 && ok2 && op.changed(np) {
				seen(op, np)
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if p, ok := obj.(*PodInfo); ok {
				seen(p, nil)
			}
		},
	}
}

// localPodEvent keeps the latency bookkeeping and the CNI overlay in step with this node's pods.
func (a *Agent) localPodEvent(old, new *PodInfo) {
	if new == nil {
		a.pending.forget(old.key())
	} else if len(new.IPs) > 0 && (old == nil || !slices.Equal(old.IPs, new.IPs)) {
		a.pending.known(new.key(), time.Now())
	}
	a.overlayEvent(old, new)
}

// remotePodEvent is overlayEvent for the cluster-wide informer, for other nodes' pods only (those
// announced to this gateway): this node's own overlay entries follow the local informer, the one the
// view reads them from.
func (a *Agent) remotePodEvent(old, new *PodInfo) {
	p := new
	if p == nil {
		p = old
	}
	if p.NodeName != a.opts.Node {
		a.overlayEvent(old, new)
	}
}

// overlayEvent forgets the overlay entries of a deleted pod. (Entries the Pod's status makes
// redundant are retired by the view's merge, from the same objects the view reads.)
func (a *Agent) overlayEvent(old, new *PodInfo) {
	if new == nil {
		a.overlay.podGone(old.key())
	}
}

// pendingPods remembers when this node's pods got a new IP, until a sync has programmed it: the
// informer path's "IP known → programmed" latency. It holds at most one entry per local pod.
type pendingPods struct {
	mu    sync.Mutex
	since map[string]time.Time
}

func (p *pendingPods) known(key string, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.since[key]; !ok {
		p.since[key] = at
	}
}

func (p *pendingPods) forget(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.since, key)
}

// programmed returns the waits of the pods known before a sync that started at started and succeeded,
// and forgets them.
func (p *pendingPods) programmed(started, done time.Time) []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []time.Duration
	for k, at := range p.since {
		if !at.After(started) {
			out = append(out, done.Sub(at))
			delete(p.since, k)
		}
	}
	return out
}
