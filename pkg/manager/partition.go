package manager

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/egressgw/egressgw/pkg/failover"
)

// NodeLeaseNamespace holds the kubelets' heartbeat Leases, one per node, named after the node.
const NodeLeaseNamespace = "kube-node-lease"

// suspectIsolation tells whether the manager should doubt its own probes: more than half of the gateway
// nodes it probes fail at once. A manager cut off from the gateways (its own node's network, a security
// group on the health port, a full conntrack table) sees exactly that, while a real failure of that
// many gateways at once is rare. Exactly half is a zone's worth of nodes in a two-zone cluster, which
// does fail together, so it does not count. Caller holds c.mu.
func (c *Controller) suspectIsolation(snap *snapshot) bool {
	probed, failing := 0, 0
	for _, name := range snap.gatewayNodes {
		// Counting the nodes whose last probe failed, not only the Unhealthy ones, sees a partition
		// whole at the first verdict, before the nodes probed a moment later are declared too.
		switch h := c.prober.Health(name); {
		case h.Verdict == failover.Unhealthy || h.Verdict == failover.Healthy && h.Failing:
			probed++
			failing++
		case h.Verdict == failover.Healthy:
			probed++
		}
	}
	isolated := probed >= 2 && 2*failing > probed
	if isolated != c.isolated {
		c.isolated = isolated
		if isolated {
			c.log.Info("most gateway probes fail at once: the manager may be cut off from the gateways, and trusts the nodes' Ready condition and Lease instead",
				"failing", failing, "probed", probed)
		} else {
			c.log.Info("gateway probes answer again: the probes decide again", "failing", failing, "probed", probed)
		}
	}
	return isolated
}

// recoveryGuard is how long a node that recovered from Unhealthy takes no new IPs: a gateway that failed
// under load (forwarding for others saturates it) and answers again must not at once receive the IPs of
// the next failure, or failovers cascade from node to node.
const recoveryGuard = 400 * time.Millisecond

// weighProbes adjusts a node's placement by what the probes cannot say alone. A node whose agent does
// not answer but which the cluster vouches for is Unconfirmed: it keeps the IPs no other node can take,
// and when the manager seems cut off from most gateways (suspectIsolation) the cluster's word decides
// and it stays eligible. A node whose last probe failed, or that recovered within recoveryGuard, keeps
// its IPs but takes no new ones. It returns when that changes by itself (zero when it does not): the
// Lease going stale, the guard ending. Caller holds c.mu.
func (c *Controller) weighProbes(n *failover.Node, node *corev1.Node, snap *snapshot, isolated bool, now time.Time) (recheckAt time.Time) {
	h := c.prober.Health(node.Name)
	switch {
	case n.Ineligible == IneligibleUnreachable:
		expires, vouched := c.vouchedUntil(node, snap)
		if !vouched || !now.Before(expires) {
			return time.Time{}
		}
		n.Unconfirmed = true
		if isolated {
			n.Ineligible = ""
		}
		return expires
	case n.Ineligible != "":
	case h.Failing:
		n.NoNewIPs = true
	case now.Sub(h.RecoveredAt) < recoveryGuard:
		n.NoNewIPs = true
		return h.RecoveredAt.Add(recoveryGuard)
	}
	return time.Time{}
}

// vouchedUntil tells until when the cluster vouches for a node whose agent does not answer the manager:
// its Node is Ready and its kubelet renewed its Lease less than NodeLeaseGrace ago.
func (c *Controller) vouchedUntil(node *corev1.Node, snap *snapshot) (time.Time, bool) {
	renewed, ok := snap.leases[node.Name]
	return renewed.Add(c.cfg.NodeLeaseGrace), ok && nodeReady(node)
}
