package agent

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
)

// gatewayCandidate reports whether node may come to hold an egress IP: a gateway's nodeSelector matches
// its labels, or a gateway's status names it (an IP still on its way off a node whose label went). Such a
// node keeps every policy's pods warm, so that taking over an IP needs no list from the API server.
func gatewayCandidate(node *corev1.Node, gateways []*egressgwv1.EgressGateway) bool {
	if node == nil {
		return false
	}
	for _, g := range gateways {
		if sel, err := g.Spec.NodeSelector.Selector(); err == nil && !sel.Empty() && sel.Matches(labels.Set(node.Labels)) {
			return true
		}
		for _, a := range g.Status.Assignments {
			if a.Node == node.Name {
				return true
			}
		}
	}
	return false
}
