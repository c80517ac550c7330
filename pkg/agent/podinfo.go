package agent

import (
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
)

// PodInfo is what the agent keeps of a Pod: a gateway candidate holds one per pod of the cluster, so
// it carries only what BuildView reads, with the IPs parsed once. A *corev1.Pod, even stripped, is a
// 1.2 KB struct of mostly empty fields; a PodInfo is about a quarter of that (docs/agent.md).
type PodInfo struct {
	metav1.TypeMeta
	// ObjectMeta holds namespace, name, UID, resourceVersion, labels and deletionTimestamp only.
	metav1.ObjectMeta
	NodeName    string
	HostNetwork bool
	Phase       corev1.PodPhase
	// IPs are the pod's IPv4 addresses (status.podIPs, or status.podIP when the list is empty).
	IPs []netip.Addr
}

// newPodInfo keeps of pod what BuildView reads.
func newPodInfo(pod *corev1.Pod) *PodInfo {
	return &PodInfo{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
			ResourceVersion: pod.ResourceVersion, Labels: pod.Labels, DeletionTimestamp: pod.DeletionTimestamp},
		NodeName: pod.Spec.NodeName, HostNetwork: pod.Spec.HostNetwork, Phase: pod.Status.Phase,
		IPs: podIPv4s(pod),
	}
}

// podIPv4s are the pod's IPv4 addresses from status.podIPs (status.podIP when the list is empty).
func podIPv4s(pod *corev1.Pod) []netip.Addr {
	var out []netip.Addr
	add := func(s string) {
		if ip, err := netip.ParseAddr(s); err == nil && ip.Is4() && !slices.Contains(out, ip) {
			out = append(out, ip)
		}
	}
	for _, p := range pod.Status.PodIPs {
		add(p.IP)
	}
	if len(pod.Status.PodIPs) == 0 {
		add(pod.Status.PodIP)
	}
	return out
}

// DeepCopyObject implements runtime.Object.
func (p *PodInfo) DeepCopyObject() k8sruntime.Object {
	c := *p
	p.ObjectMeta.DeepCopyInto(&c.ObjectMeta)
	c.IPs = slices.Clone(p.IPs)
	return &c
}

// canSend: scheduled, not host-network, not finished.
func (p *PodInfo) canSend() bool {
	return p.NodeName != "" && !p.HostNetwork && p.Phase != corev1.PodSucceeded && p.Phase != corev1.PodFailed
}

// changed reports whether p and q differ in anything BuildView reads (the kubelet's status updates of
// conditions and container states do not count).
func (p *PodInfo) changed(q *PodInfo) bool {
	return !sameLabels(p.Labels, q.Labels) || p.NodeName != q.NodeName || p.HostNetwork != q.HostNetwork ||
		p.Phase != q.Phase || !slices.Equal(p.IPs, q.IPs) || (p.DeletionTimestamp == nil) != (q.DeletionTimestamp == nil)
}

func (p *PodInfo) key() string { return p.Namespace + "/" + p.Name }
