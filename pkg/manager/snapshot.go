package manager

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
)

// snapshot is the cluster as one sync sees it, read from the informer cache without copies: nothing
// in it may be modified.
type snapshot struct {
	gateways   map[string]*egressgwv1.EgressGateway // all, deleted ones included
	nodes      map[string]*corev1.Node
	policies   []*egressgwv1.EgressPolicy
	namespaces map[string]*corev1.Namespace
	// members are the names of the nodes that match each live gateway's nodeSelector, sorted.
	members map[string][]string
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
	for _, gw := range s.live() {
		s.members[gw.Name] = s.matchingNodes(gw)
	}
	return s, nil
}

// live returns the gateways that are not being deleted, sorted by name.
func (s *snapshot) live() []*egressgwv1.EgressGateway {
	var out []*egressgwv1.EgressGateway
	for _, gw := range s.gateways {
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

// gatewayNodes returns the names of the nodes that match at least one live gateway, sorted.
func (s *snapshot) gatewayNodes() []string {
	seen := map[string]bool{}
	for _, names := range s.members {
		for _, n := range names {
			seen[n] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// wantedIPs maps every egress IP of a live gateway to the gateway that owns it: the oldest gateway
// listing it, as placement decides.
func (s *snapshot) wantedIPs() map[netip.Addr]*egressgwv1.EgressGateway {
	live := s.live()
	slices.SortStableFunc(live, func(a, b *egressgwv1.EgressGateway) int {
		return a.CreationTimestamp.Time.Compare(b.CreationTimestamp.Time)
	})
	out := map[netip.Addr]*egressgwv1.EgressGateway{}
	for _, gw := range live {
		for _, e := range gw.Spec.EgressIPs {
			if ip, err := netip.ParseAddr(e.IP); err == nil && out[ip] == nil {
				out[ip] = gw
			}
		}
	}
	return out
}

// knownIPs returns every IP any gateway lists or its status still records, so that recovery locates
// also the IPs of deleted gateways and IPs removed from a spec, which must be released.
func (s *snapshot) knownIPs() []netip.Addr {
	seen := map[netip.Addr]bool{}
	for _, gw := range s.gateways {
		for _, e := range gw.Spec.EgressIPs {
			addIP(seen, e.IP)
		}
		for _, a := range gw.Status.Assignments {
			addIP(seen, a.IP)
		}
	}
	return slices.SortedFunc(maps.Keys(seen), netip.Addr.Compare)
}

func addIP(set map[netip.Addr]bool, s string) {
	if ip, err := netip.ParseAddr(s); err == nil {
		set[ip] = true
	}
}
