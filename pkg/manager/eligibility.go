package manager

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/egressgw/egressgw/pkg/failover"
)

// Why a gateway node cannot hold egress IPs, in the words placement messages and the status show.
const (
	IneligibleDeleting    = "Deleting"
	IneligibleCordoned    = "Cordoned"
	IneligibleNotReady    = "NotReady"
	IneligibleUnreachable = "AgentUnreachable"
	IneligibleNotProbed   = "AgentNotProbedYet"
	IneligibleNoProvider  = "NoProviderID"
)

// ineligibility says why node may not hold egress IPs now, or "" when it may. The checks run from the
// most to the least deliberate: a node being deleted or drained gives its IPs up before it goes, which
// is the graceful path; a node that is not Ready or whose agent does not answer is the failure path.
func ineligibility(node *corev1.Node, verdict failover.Verdict) string {
	switch {
	case node.DeletionTimestamp != nil:
		return IneligibleDeleting
	case node.Spec.Unschedulable || hasNoExecuteTaint(node):
		return IneligibleCordoned
	case node.Spec.ProviderID == "":
		return IneligibleNoProvider
	case !nodeReady(node):
		return IneligibleNotReady
	case verdict == failover.Unhealthy:
		return IneligibleUnreachable
	case verdict == failover.Unknown:
		return IneligibleNotProbed
	}
	return ""
}

func nodeReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// hasNoExecuteTaint catches nodes being drained or shut down gracefully by tools that taint rather than
// cordon (the node lifecycle controller's unreachable taint, cluster-autoscaler's scale-down taint).
func hasNoExecuteTaint(node *corev1.Node) bool {
	for _, t := range node.Spec.Taints {
		switch t.Key {
		case corev1.TaintNodeUnreachable, "ToBeDeletedByClusterAutoscaler", "node.kubernetes.io/out-of-service":
			return true
		}
	}
	return false
}
