package agent

import (
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The caches hold only what BuildView reads. A Pod as the API server sends it weighs 5-20 KB (managed
// fields, container specs, conditions); stripped it is a few hundred bytes, which is what makes a
// gateway's cache of every pod in the cluster affordable (docs/agent.md).

// stripPod turns a Pod into a PodInfo. Anything that is not a Pod (a tombstone of a deleted one)
// passes unchanged.
func stripPod(obj any) (any, error) {
	if pod, ok := obj.(*corev1.Pod); ok {
		return newPodInfo(pod), nil
	}
	return obj, nil
}

// stripNode keeps name, labels, the InternalIP addresses and the podCIDRs.
func stripNode(obj any) (any, error) {
	node, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	out := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: node.Name, UID: node.UID, ResourceVersion: node.ResourceVersion, Labels: node.Labels},
		Spec:       corev1.NodeSpec{PodCIDRs: node.Spec.PodCIDRs},
	}
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			out.Status.Addresses = append(out.Status.Addresses, a)
		}
	}
	return out, nil
}

// stripMeta drops managed fields and annotations, the bulk of small objects' metadata.
func stripMeta(obj any) (any, error) {
	if o, ok := obj.(client.Object); ok {
		o.SetManagedFields(nil)
		o.SetAnnotations(nil)
	}
	return obj, nil
}

// nodeChanged reports whether a stripped node changed in anything BuildView reads.
func nodeChanged(a, b *corev1.Node) bool {
	return !sameLabels(a.Labels, b.Labels) || !slices.Equal(a.Spec.PodCIDRs, b.Spec.PodCIDRs) ||
		!slices.Equal(a.Status.Addresses, b.Status.Addresses)
}

func sameLabels(a, b map[string]string) bool { return maps.Equal(a, b) }
