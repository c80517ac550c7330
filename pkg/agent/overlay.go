package agent

import (
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// cniOverlay is what the CNI plugin told the agent before the kubelet wrote it to the API: a pod's IPs
// arrive with CNI ADD, seconds before the Pod's status has them, and a sandbox's IPs are released at CNI
// DEL, possibly to another pod, before the old Pod object is gone. The view merges it over the caches.
// It holds at most one entry per pod of this node.
type cniOverlay struct {
	mu sync.Mutex
	// added are pods whose sandbox CNI ADD programmed, keyed by namespace/name, with the labels the agent
	// read and the IPs CNI gave.
	added map[string]overlayPod
	// released are IPs CNI DEL freed, per pod, which the view must no longer attribute to it.
	released map[string][]netip.Addr
	// path is the file every change is written to ("" for none), log where failures of the changes
	// nobody can refuse go (overlaystate.go).
	path string
	log  *slog.Logger
}

// overlayPhase is the phase of a pod the overlay adds: selection treats Pending as running (init
// containers send while Pending).
const overlayPhase = corev1.PodPending

type overlayPod struct {
	containerID string
	pod         *PodInfo
	at          time.Time
}

func newCNIOverlay() *cniOverlay {
	return &cniOverlay{added: map[string]overlayPod{}, released: map[string][]netip.Addr{}}
}

// add records a sandbox's pod (labels from the cache or a GET) with the IPs CNI gave it; the pod counts
// as Pending (overlayPhase). It fails only when the overlay cannot be saved: a pod the agent would forget
// on a restart must not start.
func (o *cniOverlay) add(containerID string, pod *PodInfo, ips []netip.Addr) error {
	p := &PodInfo{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID, Labels: pod.Labels},
		NodeName:   pod.NodeName, Phase: overlayPhase, IPs: slices.Clone(ips),
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.added[p.key()] = overlayPod{containerID: containerID, pod: p, at: time.Now()}
	delete(o.released, p.key())
	return o.saveLocked()
}

// remove forgets the sandbox containerID of pod key and marks its IPs released: the ones DEL named, or
// those ADD recorded for that sandbox, or (when neither is known and no newer sandbox was added) the
// cached pod's. It returns whether anything changed.
func (o *cniOverlay) remove(key, containerID string, ips []netip.Addr, cached *PodInfo) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	cur, hasCur := o.added[key]
	if hasCur && cur.containerID == containerID {
		if len(ips) == 0 {
			ips = cur.pod.IPs
		}
		delete(o.added, key)
		hasCur = false
	}
	if len(ips) == 0 && !hasCur && cached != nil {
		ips = cached.IPs
	}
	if hasCur {
		// A newer sandbox of the same pod keeps its own addresses.
		ips = slices.DeleteFunc(slices.Clone(ips), func(ip netip.Addr) bool { return slices.Contains(cur.pod.IPs, ip) })
	}
	if len(ips) == 0 {
		o.saveOrLog()
		return false
	}
	o.released[key] = append(o.released[key], ips...)
	o.saveOrLog()
	return true
}

// podGone forgets a deleted pod.
func (o *cniOverlay) podGone(key string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, a := o.added[key]
	_, r := o.released[key]
	delete(o.added, key)
	delete(o.released, key)
	if a || r {
		o.saveOrLog()
	}
}

// merge returns pods with the overlay of namespace ns applied: an added sandbox's IPs replace the cached
// pod's (they are newer; the cached labels, if the pod is cached, are newer than those ADD read), and
// released IPs are removed. The cached objects are never changed.
//
// It also retires what the cached pods now say themselves: an added entry once the pod shows the same
// IPs (the kubelet wrote them), a release once the pod shows other IPs (a new sandbox). It decides that
// from pods, the very objects the view is built from: retiring from the informer's event instead let
// a sync that had read the pod just before its status update merge it after the entry was gone, so the
// pod had no address in that view and its packets left unsteered until the next sync.
func (o *cniOverlay) merge(ns string, pods []*PodInfo) []*PodInfo {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.added) == 0 && len(o.released) == 0 {
		return pods
	}
	out := make([]*PodInfo, 0, len(pods))
	seen := map[string]bool{}
	retired := false
	for _, p := range pods {
		key := p.key()
		if a, ok := o.added[key]; ok {
			seen[key] = true
			if len(p.IPs) > 0 && slices.Equal(p.IPs, a.pod.IPs) {
				delete(o.added, key)
				retired = true
			} else {
				c := *p
				c.IPs, c.Phase = a.pod.IPs, a.pod.Phase // the new sandbox runs whatever the old status said
				p = &c
			}
		} else if rel, ok := o.released[key]; ok {
			inRel := func(ip netip.Addr) bool { return slices.Contains(rel, ip) }
			if !slices.ContainsFunc(p.IPs, inRel) {
				delete(o.released, key)
				retired = true
			} else {
				c := *p
				c.IPs = slices.DeleteFunc(slices.Clone(p.IPs), inRel)
				p = &c
			}
		}
		out = append(out, p)
	}
	if retired {
		o.saveOrLog()
	}
	for key, a := range o.added {
		if a.pod.Namespace == ns && !seen[key] {
			out = append(out, a.pod)
		}
	}
	return out
}

// prune forgets entries of pods the cache does not hold: releases at once, additions once they are
// older than overlayTTL (a pod the informer has not delivered yet is normal for a few seconds; one that
// never arrives was deleted while its DEL was lost).
func (o *cniOverlay) prune(cached func(key string) bool, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := len(o.added) + len(o.released)
	for key, a := range o.added {
		if !cached(key) && now.Sub(a.at) > overlayTTL {
			delete(o.added, key)
		}
	}
	for key := range o.released {
		if !cached(key) {
			delete(o.released, key)
		}
	}
	if len(o.added)+len(o.released) != n {
		o.saveOrLog()
	}
}

const overlayTTL = 5 * time.Minute
