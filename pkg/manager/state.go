package manager

import (
	"errors"
	"net/netip"
	"time"

	"github.com/egressgw/egressgw/providers"
)

// nodeCloud is the cloud's view of a gateway node. Guarded by Controller.mu.
type nodeCloud struct {
	info providers.NodeInfo
	read bool      // info holds a successful read
	err  error     // the error of the last read, if it failed
	at   time.Time // when the last read finished
	// reread asks for a new read before CloudResync: a failed call showed the node's room or subnet wrong.
	reread bool
	busy   bool // a read (or the removal of its egress NIC) is queued or running

	node           providers.Node // as last read, for removing its egress NIC after the Node is gone
	attacher       bool           // the read ensured the node's own egress NIC (providers.Attacher)
	attachErr      string         // the last reported failure to make the NIC, to report each once
	removeAt       time.Time      // no removal of the egress NIC before this
	removeFailures int
}

// ineligibility says why placement cannot use the node's cloud info, or "". A transient error of a
// refresh (throttling, a cloud outage) keeps the last good read: it must not move IPs off a node.
func (n *nodeCloud) ineligibility() string {
	switch {
	case n == nil || (!n.read && n.err == nil):
		return "CloudInfoPending"
	case errors.Is(n.err, providers.ErrNotFound):
		return "InstanceNotFoundInCloud"
	case errors.Is(n.err, providers.ErrUnsupportedNode):
		return "UnsupportedProviderID"
	case attachFailed(n.err, n.attacher):
		return IneligibleNoEgressInterface
	case !n.read:
		return "CloudInfoUnavailable"
	}
	return ""
}

// addAddress and removeAddress keep the capacity count right between two reads of the cloud, after
// our own moves.
func (n *nodeCloud) addAddress(ip netip.Addr) {
	for _, a := range n.info.Addresses {
		if a == ip {
			return
		}
	}
	n.info.Addresses = append(n.info.Addresses, ip)
}

func (n *nodeCloud) removeAddress(ip netip.Addr) {
	out := n.info.Addresses[:0]
	for _, a := range n.info.Addresses {
		if a != ip {
			out = append(out, a)
		}
	}
	n.info.Addresses = out
}
