package manager

import (
	"slices"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// prune forgets what the leader kept about objects that are gone, so that its memory and its metrics'
// label sets follow the cluster instead of its history: the statuses last written for deleted gateways
// and policies, the health times and gauge of nodes that are no gateway any more, and the cloud record
// of a former gateway node once nothing is left to release through it or to remove from it.
// Caller holds c.mu.
func (c *Controller) prune(snap *snapshot) {
	for name := range c.written {
		if snap.gateways[name] == nil {
			delete(c.written, name)
		}
	}
	policies := make(map[client.ObjectKey]bool, len(snap.policies))
	for _, p := range snap.policies {
		policies[client.ObjectKeyFromObject(p)] = true
	}
	for key := range c.writtenPolicies {
		if !policies[key] {
			delete(c.writtenPolicies, key)
		}
	}
	for name := range c.gauged {
		if !slices.Contains(snap.gatewayNodes, name) {
			c.metrics.gatewayHealthy.DeleteLabelValues(name)
			delete(c.gauged, name)
			delete(c.detectedAt, name)
			delete(c.brokeAt, name)
		}
	}
	if c.anyUnlocated() {
		return // an IP not located yet may be on a former gateway node, and be released through its record
	}
	for name, nc := range c.nodes {
		// A dedicated egress NIC is removed first (dueRemovals), which forgets the record.
		if !slices.Contains(snap.gatewayNodes, name) && !nc.busy && !nc.info.Dedicated && !c.holdsIPs(name) {
			delete(c.nodes, name)
		}
	}
}

func (c *Controller) anyUnlocated() bool {
	for _, st := range c.ips {
		if !st.located {
			return true
		}
	}
	return false
}
