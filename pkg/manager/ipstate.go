package manager

import (
	"cmp"
	"net/netip"
	"time"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/providers"
)

// ipState is what the leader knows of one egress IP: where the cloud has it, what the leader is doing
// with it, and what status says about it. All fields are guarded by Controller.mu. Its life:
//
//	new ──located──▶ (placement decides)
//	  ├─ stays where it is ───────────────────────▶ settle: Assigned
//	  ├─ no node can take it ─────────────────────▶ unplace: Unplaced
//	  └─ another node ──startMove: Assigning──▶ the cloud call
//	         ├─ succeeded ───────────────────────▶ moved: Assigned
//	         ├─ failed ──────────────────────────▶ retryAfter: Pending, with backoff
//	         ├─ its batch was refused ───────────▶ splitOff: Pending, alone, retried soon
//	         └─ intent not recorded in status ───▶ abandonMove: Pending
//	  └─ not on a node, its gateway's status full ▶ waitForRoom: Pending
//	no gateway lists it ──release──▶ released (then forgotten)
//
// The transitions below are the only code that changes the lifecycle fields.
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

// statusHolder is the gateway whose status must list the IP because the cloud may hold it for that
// gateway: the owner of an IP on a node or on its way to one, or the former owner of an IP removed from
// its spec, until it is released. "" when no status must.
func (s *ipState) statusHolder() string {
	switch {
	case s.gateway == "" && s.former != "":
		return s.former
	case s.currentNode() != "":
		return s.gateway
	}
	return ""
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

// startMove records that a move to node is planned, for why; brokeAt is the last answer of the node it
// leaves, when that failed.
func (s *ipState) startMove(to, why string, brokeAt, now time.Time) {
	s.target, s.movingTo, s.brokeAt = to, to, brokeAt
	s.setState(egressgwv1.AssignmentAssigning, "Moving", "moving to "+to+": "+why, now)
}

// moved records a move our own call confirmed.
func (s *ipState) moved(to string, now time.Time) {
	s.node, s.target, s.movingTo, s.confirmedAt, s.brokeAt = to, "", "", now, time.Time{}
	s.alone, s.failures, s.retryAt = false, 0, time.Time{}
	s.setState(egressgwv1.AssignmentAssigned, "", "", now)
}

// abandonMove takes back a planned move whose intent could not be recorded; the next sync plans again.
func (s *ipState) abandonMove(reason, message string, now time.Time) {
	s.target, s.movingTo = "", ""
	s.setState(egressgwv1.AssignmentPending, reason, message, now)
}

// retryAfter records a failed operation: Pending until now+wait, saying what failed.
func (s *ipState) retryAfter(wait time.Duration, reason, message string, now time.Time) {
	s.target, s.retryAt = "", now.Add(wait)
	s.setState(egressgwv1.AssignmentPending, reason, message, now)
}

// splitOff records that the cloud refused a batch the IP was in: it is retried soon, alone.
func (s *ipState) splitOff(wait time.Duration, reason, message string, now time.Time) {
	s.alone = true
	s.retryAfter(wait, reason, message, now)
}

// waitForRoom records that a first move of the IP waits: its gateway's status could not record it.
func (s *ipState) waitForRoom(message string, now time.Time) {
	s.movingTo = ""
	s.setState(egressgwv1.AssignmentPending, ReasonStatusFull, message, now)
}

// unplace records that no node can take the IP now.
func (s *ipState) unplace(reason, message string, now time.Time) {
	s.movingTo = ""
	s.setState(egressgwv1.AssignmentUnplaced, reason, message, now)
}

// settle records that the IP stays where it is; reason and message say why when that is a compromise.
func (s *ipState) settle(reason, message string, now time.Time) {
	s.movingTo = ""
	s.setState(egressgwv1.AssignmentAssigned, reason, message, now)
}

// released records that the cloud holds the IP nowhere any more, by our own call.
func (s *ipState) released(now time.Time) {
	s.node, s.target, s.confirmedAt = "", "", now
}

// associated records that the IP's public IP is associated.
func (s *ipState) associated() {
	s.target, s.publicOK, s.failures, s.retryAt = "", true, 0, time.Time{}
}

// locatedAs records where a read of the cloud found the IP: on node (a cluster node), on something
// foreign (described), or nowhere (loc nil).
func (s *ipState) locatedAs(loc *providers.Location, node, foreign string) {
	s.located = true
	s.node, s.foreign, s.publicIP, s.publicOK = node, foreign, netip.Addr{}, false
	if loc != nil {
		s.publicIP = loc.PublicIP
		s.publicOK = s.publicID != "" && loc.PublicIPID == s.publicID
	}
}
