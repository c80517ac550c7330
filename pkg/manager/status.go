package manager

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/failover"
)

const (
	maxStatusNodes = 512
	statusWriters  = 8
	// maxMessage is the schema's cap on assignments[].message, and the cap of an Event's note: every
	// message the manager writes is bounded to it, so that no message can make a write fail.
	maxMessage = 1024
)

// bounded cuts a message to maxMessage bytes, on a character boundary, marking the cut.
func bounded(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	const mark = " [...]"
	cut := maxMessage - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// writeGatewayStatus applies the gateway's status when it differs from the last one this leader wrote.
// Only the sync goroutine writes status, one write per gateway at a time.
func (c *Controller) writeGatewayStatus(ctx context.Context, gw *egressgwv1.EgressGateway) error {
	c.mu.Lock()
	status := c.gatewayStatus(gw)
	last, written := c.written[gw.Name]
	c.mu.Unlock()
	if written && equality.Semantic.DeepEqual(status, last) {
		return nil
	}
	gvk := egressgwv1.GroupVersion.WithKind("EgressGateway")
	if err := c.applyStatus(ctx, gvk, client.ObjectKeyFromObject(gw), status); err != nil {
		return err
	}
	c.mu.Lock()
	c.written[gw.Name] = status
	c.mu.Unlock()
	return nil
}

// gatewayStatus computes the status of a gateway from the IP states and the last view. Caller holds c.mu.
func (c *Controller) gatewayStatus(gw *egressgwv1.EgressGateway) egressgwv1.EgressGatewayStatus {
	s := egressgwv1.EgressGatewayStatus{ObservedGeneration: gw.Generation, Conditions: append([]metav1.Condition(nil), gw.Status.Conditions...)}
	specIPs := c.view.ips[gw.Name].spec
	for _, ip := range specIPs {
		a := c.assignmentStatus(gw, ip)
		if a.State == egressgwv1.AssignmentAssigned && a.Message == "" {
			s.AssignedIPCount++
		}
		s.Assignments = append(s.Assignments, a)
	}
	s.Assignments = append(s.Assignments, c.releasingStatus(gw, specIPs)...)
	members := c.view.members[gw.Name]
	for _, name := range members[:min(len(members), maxStatusNodes)] {
		healthy := c.view.nodeWhy[name] == ""
		s.Nodes = append(s.Nodes, egressgwv1.GatewayNodeStatus{Name: name, Zone: c.view.zones[name], Healthy: healthy,
			EgressInterface: c.view.egressIfs[name]})
	}
	for _, name := range members {
		if c.view.nodeWhy[name] == "" {
			s.HealthyNodeCount++
		}
	}
	s.EgressIPCount = int32(len(gw.Spec.EgressIPs))
	setGatewayConditions(&s, gw.Generation) // from every assignment, listed or not
	s.Assignments = c.capAssignments(gw.Name, s.Assignments)
	return s
}

const (
	// maxAssignments is the schema's cap on status.assignments.
	maxAssignments = 128
	// ReasonStatusFull: a new egress IP waits for its first move until the gateway's status has room.
	ReasonStatusFull = "StatusFull"
)

// capAssignments cuts the list to maxAssignments entries. The entries of IPs the cloud may hold (on a
// node, on their way, being released) stay: the status is what tells a new leader about them, and an
// IP being released that no status lists would never be released. Entries of IPs held nowhere go first:
// the spec lists them too. The moves are held back so that the first kind alone never exceeds the cap
// (statusEntriesHeld); the order of the kept entries stays.
func (c *Controller) capAssignments(gateway string, as []egressgwv1.IPAssignment) []egressgwv1.IPAssignment {
	if len(as) <= maxAssignments {
		return as
	}
	mustKeep := func(a egressgwv1.IPAssignment) bool { return a.Node != "" || a.State == egressgwv1.AssignmentReleasing }
	spare := maxAssignments
	for _, a := range as {
		if mustKeep(a) {
			spare--
		}
	}
	out := make([]egressgwv1.IPAssignment, 0, maxAssignments)
	for _, a := range as {
		if !mustKeep(a) {
			if spare <= 0 {
				continue
			}
			spare--
		}
		out = append(out, a)
	}
	if len(out) > maxAssignments {
		c.log.Error(nil, "status has no room for every IP the cloud may hold for the gateway; a new leader would not know the unlisted ones",
			"gateway", gateway, "unlisted", len(out)-maxAssignments, "firstUnlisted", out[maxAssignments].IP)
		out = out[:maxAssignments]
	}
	return out
}

// releasingStatus lists the IPs removed from the gateway's spec that are not released yet: the status is
// what tells a new leader to release them. Caller holds c.mu.
func (c *Controller) releasingStatus(gw *egressgwv1.EgressGateway, specIPs []netip.Addr) []egressgwv1.IPAssignment {
	var ips []netip.Addr
	for ip, st := range c.ips {
		// A deleted gateway's spec still lists the IPs it releases: they are listed once, from the spec.
		if st.gateway == "" && st.former == gw.Name && !slices.Contains(specIPs, ip) {
			ips = append(ips, ip)
		}
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	out := make([]egressgwv1.IPAssignment, 0, len(ips))
	for _, ip := range ips {
		st := c.ips[ip]
		a := egressgwv1.IPAssignment{IP: ip.String(), State: egressgwv1.AssignmentReleasing, Node: st.node, Reason: "RemovedFromSpec",
			Message: "removed from the spec; releasing it in the cloud", Since: &metav1.Time{Time: st.since.Truncate(time.Second)}}
		if st.failures > 0 {
			a.Message = bounded(st.message)
		}
		out = append(out, a)
	}
	return out
}

func (c *Controller) assignmentStatus(gw *egressgwv1.EgressGateway, ip netip.Addr) egressgwv1.IPAssignment {
	a := egressgwv1.IPAssignment{IP: ip.String(), State: egressgwv1.AssignmentPending}
	st := c.ips[ip]
	switch {
	case st == nil:
		a.Reason, a.Message = "Locating", "waiting for the manager to read where the cloud has this IP"
	case c.view.conflicts[gw.Name][ip] != "":
		a.State, a.Reason, a.Message = egressgwv1.AssignmentUnplaced, failover.ReasonIPConflict, bounded(c.view.conflicts[gw.Name][ip])
	case !st.located:
		a.Reason, a.Message = "Locating", "reading where the cloud has this IP"
	case st.foreign != "":
		a.State, a.Reason, a.Message = egressgwv1.AssignmentUnplaced, "IPInUse", bounded("the cloud will not give this IP to a gateway: "+st.foreign)
	default:
		a.State, a.Node, a.Reason, a.Message = st.state, st.currentNode(), st.reason, bounded(st.message)
		a.Since = &metav1.Time{Time: st.since.Truncate(time.Second)}
		if st.publicIP.IsValid() {
			a.PublicIP = st.publicIP.String()
		}
	}
	return a
}

// setGatewayConditions derives Ready and Degraded from the assignments: the first IP that is not
// assigned gives the reason, and the message counts and names the problems.
func setGatewayConditions(s *egressgwv1.EgressGatewayStatus, generation int64) {
	total := int(s.EgressIPCount)
	ready := metav1.Condition{Type: egressgwv1.ConditionReady, Status: metav1.ConditionTrue, Reason: "AllAssigned",
		Message: fmt.Sprintf("%d of %d egress IPs assigned to healthy gateway nodes", total, total), ObservedGeneration: generation}
	degraded := metav1.Condition{Type: egressgwv1.ConditionDegraded, Status: metav1.ConditionFalse, Reason: "AllAssigned",
		Message: ready.Message, ObservedGeneration: generation}
	if first, n := firstProblem(s.Assignments); n > 0 {
		reason := problemReason(first)
		msg := bounded(fmt.Sprintf("%d of %d egress IPs not working; %s: %s", n, total, first.IP, first.Message))
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, reason, msg
		degraded.Status, degraded.Reason, degraded.Message = metav1.ConditionTrue, reason, msg
	}
	meta.SetStatusCondition(&s.Conditions, ready)
	meta.SetStatusCondition(&s.Conditions, degraded)
}

func firstProblem(as []egressgwv1.IPAssignment) (first egressgwv1.IPAssignment, n int) {
	for _, a := range as {
		if a.State == egressgwv1.AssignmentReleasing {
			continue // no longer the gateway's: it serves no traffic of it
		}
		if a.State != egressgwv1.AssignmentAssigned || a.Message != "" {
			if n == 0 {
				first = a
			}
			n++
		}
	}
	return first, n
}

func problemReason(a egressgwv1.IPAssignment) string {
	if a.Reason != "" {
		return a.Reason
	}
	switch a.State {
	case egressgwv1.AssignmentAssigning:
		return "Moving"
	case egressgwv1.AssignmentUnplaced:
		return "Unplaced"
	case egressgwv1.AssignmentAssigned:
		return "PublicIPNotAssociated"
	}
	return "Pending"
}
