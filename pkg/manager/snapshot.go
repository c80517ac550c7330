package manager

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/failover"
)

// snapshot is the cluster as one sync sees it, read from the informer cache without copies: nothing
// in it may be modified.
type snapshot struct {
	gateways   map[string]*egressgwv1.EgressGateway // all, deleted ones included
	nodes      map[string]*corev1.Node
	policies   []*egressgwv1.EgressPolicy
	namespaces map[string]*corev1.Namespace
	// live are the gateways not being deleted, sorted by name.
	live []*egressgwv1.EgressGateway
	// members are the names of the nodes that match each live gateway's nodeSelector, sorted.
	members map[string][]string
	// gatewayNodes are the names of the nodes that match at least one live gateway, sorted.
	gatewayNodes []string
	// wanted maps every egress IP of a live gateway to the gateway that owns it (failover.Owners).
	wanted map[netip.Addr]*egressgwv1.EgressGateway
	// leases are the last renewals of the nodes' kubelet Leases, by node name.
	leases map[string]time.Time
	// ips are the IPs of every gateway (deleted ones included) and policy, parsed once here; nothing
	// after the snapshot parses an IP of the spec or status again.
	ips map[string]gatewayIPs
	// policyIPs are the pinned (spec) and current (status) egress IPs of each policy; invalid when unset.
	policyIPs map[*egressgwv1.EgressPolicy]policyIPs
}

// gatewayIPs are a gateway's IPs as parsed from its spec and status.
type gatewayIPs struct {
	spec []netip.Addr // spec.egressIPs, in spec order
	// recorded are the IPs its status.assignments lists, in status order: a new leader learns from them
	// which IPs removed from the spec are still to be released.
	recorded []netip.Addr
}

type policyIPs struct{ pinned, current netip.Addr }

func (c *Controller) snapshot(ctx context.Context) (*snapshot, error) {
	s := &snapshot{gateways: map[string]*egressgwv1.EgressGateway{}, nodes: map[string]*corev1.Node{},
		namespaces: map[string]*corev1.Namespace{}, members: map[string][]string{}}
	var gws egressgwv1.EgressGatewayList
	var nodes corev1.NodeList
	var pols egressgwv1.EgressPolicyList
	var nss corev1.NamespaceList
	for _, l := range []client.ObjectList{&gws, &nodes, &pols, &nss} {
		if err := c.client.List(ctx, l, client.UnsafeDisableDeepCopy); err != nil {
			return nil, fmt.Errorf("list %T: %w", l, err)
		}
	}
	var leases coordinationv1.LeaseList
	if err := c.client.List(ctx, &leases, client.InNamespace(NodeLeaseNamespace), client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list the node Leases: %w", err)
	}
	s.leases = make(map[string]time.Time, len(leases.Items))
	for _, l := range leases.Items {
		if l.Spec.RenewTime != nil {
			s.leases[l.Name] = l.Spec.RenewTime.Time
		}
	}
	for i := range gws.Items {
		s.gateways[gws.Items[i].Name] = &gws.Items[i]
	}
	s.ips = make(map[string]gatewayIPs, len(s.gateways))
	for _, gw := range s.gateways {
		s.ips[gw.Name] = c.parseGatewayIPs(gw)
	}
	s.policyIPs = make(map[*egressgwv1.EgressPolicy]policyIPs, len(pols.Items))
	for i := range nodes.Items {
		s.nodes[nodes.Items[i].Name] = &nodes.Items[i]
	}
	for i := range pols.Items {
		p := &pols.Items[i]
		s.policies = append(s.policies, p)
		s.policyIPs[p] = policyIPs{pinned: c.parseIP(p, "spec.egressIP", p.Spec.EgressIP),
			current: c.parseIP(p, "status.egressIP", p.Status.EgressIP)}
	}
	for i := range nss.Items {
		s.namespaces[nss.Items[i].Name] = &nss.Items[i]
	}
	s.live = liveGateways(s.gateways)
	for _, gw := range s.live {
		s.members[gw.Name] = s.matchingNodes(gw)
	}
	s.gatewayNodes = unionSorted(s.members)
	s.wanted = s.wantedIPs()
	return s, nil
}

func (c *Controller) parseGatewayIPs(gw *egressgwv1.EgressGateway) gatewayIPs {
	var out gatewayIPs
	for i, e := range gw.Spec.EgressIPs {
		if ip := c.parseIP(gw, fmt.Sprintf("spec.egressIPs[%d].ip", i), e.IP); ip.IsValid() {
			out.spec = append(out.spec, ip)
		}
	}
	for i, a := range gw.Status.Assignments {
		if ip := c.parseIP(gw, fmt.Sprintf("status.assignments[%d].ip", i), a.IP); ip.IsValid() {
			out.recorded = append(out.recorded, ip)
		}
	}
	return out
}

// maxInvalidReported bounds the memory of the IPs already reported invalid.
const maxInvalidReported = 1024

// parseIP parses an IP of an object; "" is no IP. The schema refuses IPs that do not parse (and the
// manager writes none), so an invalid one means a schema that was bypassed or is older than this
// manager: it is logged once, naming the object and field, and treated as absent.
func (c *Controller) parseIP(obj client.Object, field, text string) netip.Addr {
	if text == "" {
		return netip.Addr{}
	}
	ip, err := netip.ParseAddr(text)
	if err == nil {
		return ip
	}
	key := fmt.Sprintf("%T %s/%s %s=%q", obj, obj.GetNamespace(), obj.GetName(), field, text)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.invalidIPs == nil || len(c.invalidIPs) >= maxInvalidReported {
		c.invalidIPs = map[string]bool{}
	}
	if !c.invalidIPs[key] {
		c.invalidIPs[key] = true
		c.log.Error(err, "ignoring an IP that does not parse; the CRD schema should have refused it: fix the field or reinstall the CRDs",
			"kind", fmt.Sprintf("%T", obj), "namespace", obj.GetNamespace(), "name", obj.GetName(), "field", field, "value", text)
	}
	return netip.Addr{}
}

func liveGateways(all map[string]*egressgwv1.EgressGateway) []*egressgwv1.EgressGateway {
	var out []*egressgwv1.EgressGateway
	for _, gw := range all {
		if gw.DeletionTimestamp == nil {
			out = append(out, gw)
		}
	}
	slices.SortFunc(out, func(a, b *egressgwv1.EgressGateway) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (s *snapshot) matchingNodes(gw *egressgwv1.EgressGateway) []string {
	sel, err := gw.Spec.NodeSelector.Selector()
	if err != nil {
		return nil // the schema refuses malformed selectors; nothing matches one that slipped through
	}
	var names []string
	for name, n := range s.nodes {
		if sel.Matches(labels.Set(n.Labels)) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

func unionSorted(lists map[string][]string) []string {
	seen := map[string]bool{}
	for _, names := range lists {
		for _, n := range names {
			seen[n] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// wantedIPs maps every egress IP of the live gateways to its owner, by placement's own rule.
func (s *snapshot) wantedIPs() map[netip.Addr]*egressgwv1.EgressGateway {
	byName := map[string]*egressgwv1.EgressGateway{}
	var gws []failover.Gateway
	for _, gw := range s.live {
		byName[gw.Name] = gw
		gws = append(gws, failover.Gateway{Name: gw.Name, Created: gw.CreationTimestamp.Time, IPs: s.ips[gw.Name].spec})
	}
	out := map[netip.Addr]*egressgwv1.EgressGateway{}
	for ip, owner := range failover.Owners(gws) {
		out[ip] = byName[owner]
	}
	return out
}

// knownIPs returns every IP any gateway lists or its status still records, so that recovery locates
// also the IPs of deleted gateways and IPs removed from a spec, which must be released.
func (s *snapshot) knownIPs() []netip.Addr {
	seen := map[netip.Addr]bool{}
	for _, g := range s.ips {
		for _, ip := range g.claimed() {
			seen[ip] = true
		}
	}
	return slices.SortedFunc(maps.Keys(seen), netip.Addr.Compare)
}

// claimed are the IPs a gateway lists in its spec or still records in its status: those it may hold.
func (g gatewayIPs) claimed() []netip.Addr {
	ips := slices.Clone(g.spec)
	for _, ip := range g.recorded {
		if !slices.Contains(ips, ip) {
			ips = append(ips, ip)
		}
	}
	return ips
}
