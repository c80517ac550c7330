package manager

import (
	"cmp"
	"errors"
	"net/netip"
	"time"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/providers"
)

// ipState is what the leader knows of one egress IP. All fields are guarded by Controller.mu.
type ipState struct {
	ip       netip.Addr
	gateway  string // the gateway that owns the IP
	publicID string // spec publicIP: the provider's handle of a public IP that must follow the IP

	// Where the cloud has the IP, as last read (Locate) or confirmed by our own calls.
	located  bool       // the cloud was asked since the IP became known
	node     string     // the node holding it; "" when none
	foreign  string     // set when something that is not a cluster node holds it: we never take it
	publicIP netip.Addr // the public address associated with it, if any
	publicOK bool       // publicID is associated with it

	target string // the node an operation is taking it to; "" when none is in flight
	// movingTo is the node of the move planned last, kept while it is retried, so that status keeps
	// naming where the IP's traffic goes during the whole move; "" when no move is under way.
	movingTo string
	// former is the gateway that listed the IP before it was removed from its spec (or the gateway was
	// deleted): its status lists the IP as Releasing until the release succeeded, which is how a new
	// leader learns that the IP is still to be released.
	former string

	state    egressgwv1.AssignmentState
	since    time.Time
	reason   string // why the IP is not Assigned, CamelCase
	message  string
	failures int       // consecutive failed operations
	retryAt  time.Time // no new operation before this
	brokeAt  time.Time // last answer of the failed node it is moving away from, for the failover time
	// alone makes the IP move in a call of its own: the cloud refused a batch it was in, and one
	// refused IP must not hold up the others. Cleared when a move of it succeeds.
	alone bool
	// confirmedAt is when our own call last confirmed where the IP is; a read of the cloud that started
	// shortly before or after may not see that write yet and is ignored for this IP.
	confirmedAt time.Time
}

// setState changes the state and remembers when it changed; reason and message always follow.
func (s *ipState) setState(state egressgwv1.AssignmentState, reason, message string, now time.Time) {
	if s.state != state {
		s.since = now
	}
	s.state, s.reason, s.message = state, reason, message
}

// currentNode is where the IP is going while a move runs, else where it is. The status names it, and
// placement takes it as the IP's node, so that it neither repeats a move in flight nor counts its
// target's capacity twice.
func (s *ipState) currentNode() string {
	if s.target != "" {
		return s.target
	}
	return s.node
}

// trafficNode is where the IP's traffic goes, as policies publish it: the node of a move in flight or
// under way (so that agents re-steer the moment it lands), else the node holding an assigned IP. An IP
// that no move is taking anywhere and that is not assigned names none.
func (s *ipState) trafficNode() string {
	if s.state == egressgwv1.AssignmentUnplaced {
		return ""
	}
	if node := cmp.Or(s.target, s.movingTo); node != "" {
		return node
	}
	if s.state == egressgwv1.AssignmentAssigned {
		return s.node
	}
	return ""
}

// nodeCloud is the cloud's view of a gateway node. Guarded by Controller.mu.
type nodeCloud struct {
	info providers.NodeInfo
	read bool      // info holds a successful read
	err  error     // the error of the last read, if it failed
	at   time.Time // when the last read finished; zero asks for a new read
	busy bool      // a read (or the removal of its egress NIC) is queued or running

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
