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
}

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
	for i := range nodes.Items {
		s.nodes[nodes.Items[i].Name] = &nodes.Items[i]
	}
	for i := range pols.Items {
		s.policies = append(s.policies, &pols.Items[i])
	}
	for i := range nss.Items {
		s.namespaces[nss.Items[i].Name] = &nss.Items[i]
	}
	s.live = liveGateways(s.gateways)
	for _, gw := range s.live {
		s.members[gw.Name] = s.matchingNodes(gw)
	}
	s.gatewayNodes = unionSorted(s.members)
	s.wanted = wantedIPs(s.live)
	return s, nil
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
func wantedIPs(live []*egressgwv1.EgressGateway) map[netip.Addr]*egressgwv1.EgressGateway {
	byName := map[string]*egressgwv1.EgressGateway{}
	var gws []failover.Gateway
	for _, gw := range live {
		byName[gw.Name] = gw
		gws = append(gws, failover.Gateway{Name: gw.Name, Created: gw.CreationTimestamp.Time, IPs: specIPs(gw)})
	}
	out := map[netip.Addr]*egressgwv1.EgressGateway{}
	for ip, owner := range failover.Owners(gws) {
		out[ip] = byName[owner]
	}
	return out
}

// specIPs returns the gateway's egress IPs; the schema guarantees they parse.
func specIPs(gw *egressgwv1.EgressGateway) []netip.Addr {
	var ips []netip.Addr
	for _, e := range gw.Spec.EgressIPs {
		if ip, err := netip.ParseAddr(e.IP); err == nil {
			ips = append(ips, ip)
		}
	}
	return ips
}

// knownIPs returns every IP any gateway lists or its status still records, so that recovery locates
// also the IPs of deleted gateways and IPs removed from a spec, which must be released.
func (s *snapshot) knownIPs() []netip.Addr {
	seen := map[netip.Addr]bool{}
	for _, gw := range s.gateways {
		for _, ip := range claimedIPs(gw) {
			seen[ip] = true
		}
	}
	return slices.SortedFunc(maps.Keys(seen), netip.Addr.Compare)
}

// claimedIPs are the IPs a gateway lists in its spec or still records in its status: those it may hold.
func claimedIPs(gw *egressgwv1.EgressGateway) []netip.Addr {
	ips := specIPs(gw)
	for _, a := range gw.Status.Assignments {
		if ip, err := netip.ParseAddr(a.IP); err == nil && !slices.Contains(ips, ip) {
			ips = append(ips, ip)
		}
	}
	return ips
}
