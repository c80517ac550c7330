package aws

import (
	"fmt"
	"strings"

	"github.com/egressgw/egressgw/providers"
)

// instanceRef is what a Node's providerID names: an EC2 instance and, usually, its zone.
type instanceRef struct {
	zone, id string
}

// parseProviderID accepts the forms the AWS cloud provider writes: aws:///<zone>/<instance-id>,
// aws://<zone>/<instance-id> and aws:///<instance-id>. Anything else (another cloud, a Fargate pod, a typo)
// is ErrUnsupportedNode with the reason.
func parseProviderID(providerID string) (instanceRef, error) {
	rest, ok := strings.CutPrefix(providerID, "aws://")
	if !ok {
		return instanceRef{}, fmt.Errorf("providerID %q is not of the form aws:///<zone>/<instance-id>: %w", providerID, providers.ErrUnsupportedNode)
	}
	parts := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	ref := instanceRef{id: parts[len(parts)-1]}
	if len(parts) == 2 {
		ref.zone = parts[0]
	}
	if len(parts) > 2 || len(parts) == 2 && parts[0] == "" {
		return instanceRef{}, fmt.Errorf("providerID %q has more than a zone and an instance ID: %w", providerID, providers.ErrUnsupportedNode)
	}
	if !validInstanceID(ref.id) {
		return instanceRef{}, fmt.Errorf("providerID %q does not end in an EC2 instance ID (i- and 8 or 17 hex digits): %w", providerID, providers.ErrUnsupportedNode)
	}
	return ref, nil
}

func validInstanceID(id string) bool {
	hex, ok := strings.CutPrefix(id, "i-")
	if !ok || len(hex) != 8 && len(hex) != 17 {
		return false
	}
	return strings.Trim(hex, "0123456789abcdef") == ""
}

// InstanceOf implements providers.Provider: the EC2 instance ID at the end of the providerID.
func (p *Provider) InstanceOf(providerID string) (string, error) {
	ref, err := parseProviderID(providerID)
	return ref.id, err
}

// InstanceNode implements providers.Provider with the zone-less providerID aws:///<instance-id>, the form
// Attachments reports too.
func (p *Provider) InstanceNode(instance string) (providers.Node, error) {
	if !validInstanceID(instance) {
		return providers.Node{}, fmt.Errorf("%q is not an EC2 instance ID (i- and 8 or 17 hex digits): %w", instance, providers.ErrUnsupportedNode)
	}
	return providers.Node{Name: instance, ProviderID: "aws:///" + instance}, nil
}
