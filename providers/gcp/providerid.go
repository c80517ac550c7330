package gcp

import (
	"fmt"
	"strings"

	"github.com/egressgw/egressgw/providers"
)

// instanceRef is what a Node's providerID names: a Compute Engine instance.
type instanceRef struct {
	project, zone, name string
}

// key is the instance's unique name, as NodeInfo.Instance and Location.Instance report it.
func (r instanceRef) key() string { return r.project + "/" + r.zone + "/" + r.name }

// parseProviderID accepts the form the GCE cloud provider writes, gce://<project>/<zone>/<instance>.
// Anything else (another cloud, a typo) is ErrUnsupportedNode with the reason.
func parseProviderID(providerID string) (instanceRef, error) {
	rest, ok := strings.CutPrefix(providerID, "gce://")
	if !ok {
		return instanceRef{}, fmt.Errorf("providerID %q is not of the form gce://<project>/<zone>/<instance>: %w", providerID, providers.ErrUnsupportedNode)
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return instanceRef{}, fmt.Errorf("providerID %q does not name a project, a zone and an instance: %w", providerID, providers.ErrUnsupportedNode)
	}
	if strings.Count(parts[1], "-") < 2 {
		return instanceRef{}, fmt.Errorf("providerID %q: %q is not a zone (region-letter, like us-central1-a): %w", providerID, parts[1], providers.ErrUnsupportedNode)
	}
	return instanceRef{project: parts[0], zone: parts[1], name: parts[2]}, nil
}

// regionOf is the region of a zone (us-central1-a -> us-central1).
func regionOf(zone string) string {
	return zone[:strings.LastIndex(zone, "-")]
}

// lastSegment is the name at the end of a resource URL.
func lastSegment(url string) string {
	return url[strings.LastIndex(url, "/")+1:]
}

// InstanceOf implements providers.Provider: <project>/<zone>/<instance>, as NodeInfo.Instance and
// Location.Instance name an instance.
func (p *Provider) InstanceOf(providerID string) (string, error) {
	ref, err := parseProviderID(providerID)
	return ref.key(), err
}

// InstanceNode implements providers.Provider: the providerID gce://<project>/<zone>/<instance> of an
// instance named <project>/<zone>/<instance>.
func (p *Provider) InstanceNode(instance string) (providers.Node, error) {
	ref, err := parseProviderID("gce://" + instance)
	if err != nil {
		return providers.Node{}, fmt.Errorf("instance %q is not of the form <project>/<zone>/<instance>: %w", instance, providers.ErrUnsupportedNode)
	}
	return providers.Node{Name: ref.name, ProviderID: "gce://" + ref.key()}, nil
}
