package manager

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/failover"
)

// Reasons of the policy conditions.
const (
	ReasonAccepted             = "Accepted"
	ReasonGatewayNotFound      = "GatewayNotFound"
	ReasonNamespaceNotAdmitted = "NamespaceNotAdmitted"
	ReasonEgressIPAssigned     = "EgressIPAssigned"
	ReasonNotAccepted          = "NotAccepted"
)

// writePolicyStatuses brings every policy's status up to date, with an Event when a policy stops being
// accepted.
func (c *Controller) writePolicyStatuses(ctx context.Context, snap *snapshot) error {
	var errs []error
	for _, p := range snap.policies {
		c.mu.Lock()
		status := c.policyStatus(p, snap)
		c.mu.Unlock()
		errs = append(errs, c.writePolicyStatus(ctx, p, status))
	}
	return errors.Join(errs...)
}

func (c *Controller) writePolicyStatus(ctx context.Context, p *egressgwv1.EgressPolicy, status egressgwv1.EgressPolicyStatus) error {
	key := client.ObjectKeyFromObject(p)
	c.mu.Lock()
	last, written := c.writtenPolicies[key]
	c.mu.Unlock()
	if written && equality.Semantic.DeepEqual(status, last) {
		return nil
	}
	if now := meta.FindStatusCondition(status.Conditions, egressgwv1.ConditionAccepted); now != nil && now.Status == metav1.ConditionFalse &&
		!meta.IsStatusConditionFalse(p.Status.Conditions, egressgwv1.ConditionAccepted) {
		c.events.Eventf(p, nil, corev1.EventTypeWarning, now.Reason, "Accept", "%s", now.Message)
	}
	if err := c.applyStatus(ctx, egressgwv1.GroupVersion.WithKind("EgressPolicy"), key, status); err != nil {
		return err
	}
	c.mu.Lock()
	c.writtenPolicies[key] = status
	c.mu.Unlock()
	return nil
}

// policyStatus decides a policy's conditions and egress IP. Caller holds c.mu.
func (c *Controller) policyStatus(p *egressgwv1.EgressPolicy, snap *snapshot) egressgwv1.EgressPolicyStatus {
	s := egressgwv1.EgressPolicyStatus{ObservedGeneration: p.Generation, Conditions: append([]metav1.Condition(nil), p.Status.Conditions...)}
	accepted, ip := c.acceptPolicy(p, snap, &s)
	accepted.Type, accepted.ObservedGeneration = egressgwv1.ConditionAccepted, p.Generation
	meta.SetStatusCondition(&s.Conditions, accepted)
	meta.SetStatusCondition(&s.Conditions, c.policyReady(p, ip, &s, accepted))
	return s
}

// acceptPolicy checks the policy against its gateway and namespace, and picks its egress IP, which it
// returns and records in s.
func (c *Controller) acceptPolicy(p *egressgwv1.EgressPolicy, snap *snapshot, s *egressgwv1.EgressPolicyStatus) (metav1.Condition, netip.Addr) {
	gw := snap.gateways[p.Spec.GatewayName]
	if gw == nil || gw.DeletionTimestamp != nil {
		return refused(ReasonGatewayNotFound, "EgressGateway %s does not exist", p.Spec.GatewayName), netip.Addr{}
	}
	if !admits(gw, snap.namespaces[p.Namespace]) {
		return refused(ReasonNamespaceNotAdmitted, "EgressGateway %s does not admit namespace %s: its namespaceSelector does not match the namespace's labels",
			gw.Name, p.Namespace), netip.Addr{}
	}
	var ips []netip.Addr
	placed := map[netip.Addr]bool{}
	for _, ip := range snap.ips[gw.Name].spec {
		if st := c.ips[ip]; st != nil && st.gateway == gw.Name {
			ips = append(ips, ip)
			placed[ip] = st.trafficNode() != "" // assigned, or on its way: a move keeps the policy's IP
		}
	}
	pol := snap.policyIPs[p]
	choice := failover.PolicyIP(p.Namespace+"/"+p.Name, ips, placed, pol.pinned, pol.current)
	if choice.Reason != "" {
		return refused(choice.Reason, "%s", choice.Message), netip.Addr{}
	}
	s.EgressIP = choice.IP.String()
	s.GatewayNode = c.ips[choice.IP].trafficNode()
	return metav1.Condition{Status: metav1.ConditionTrue, Reason: ReasonAccepted,
		Message: fmt.Sprintf("uses egress IP %s of gateway %s", choice.IP, gw.Name)}, choice.IP
}

// policyReady says whether ip, the policy's egress IP when it is accepted, is assigned.
func (c *Controller) policyReady(p *egressgwv1.EgressPolicy, ip netip.Addr, s *egressgwv1.EgressPolicyStatus, accepted metav1.Condition) metav1.Condition {
	ready := metav1.Condition{Type: egressgwv1.ConditionReady, Status: metav1.ConditionFalse, ObservedGeneration: p.Generation}
	switch {
	case accepted.Status != metav1.ConditionTrue:
		ready.Reason, ready.Message = ReasonNotAccepted, accepted.Message
	case s.GatewayNode != "" && c.ips[ip].state == egressgwv1.AssignmentAssigned:
		ready.Status, ready.Reason = metav1.ConditionTrue, ReasonEgressIPAssigned
		ready.Message = fmt.Sprintf("egress IP %s is on node %s", ip, s.GatewayNode)
	default:
		st := c.ips[ip]
		ready.Reason, ready.Message = cmp.Or(st.reason, "Pending"), bounded(fmt.Sprintf("egress IP %s is not assigned yet: %s", ip, cmp.Or(st.message, string(st.state))))
	}
	return ready
}

func refused(reason, format string, args ...any) metav1.Condition {
	return metav1.Condition{Status: metav1.ConditionFalse, Reason: reason, Message: bounded(fmt.Sprintf(format, args...))}
}

// admits reports whether the gateway's namespaceSelector matches the namespace. An unknown namespace
// is not admitted.
func admits(gw *egressgwv1.EgressGateway, ns *corev1.Namespace) bool {
	if ns == nil {
		return false
	}
	sel, err := gw.Spec.NamespaceSelector.Selector()
	return err == nil && sel.Matches(labels.Set(ns.Labels))
}
