// Package v1alpha1 holds the egressgw.io/v1alpha1 API: EgressGateway (cluster-scoped, owned by the
// platform team) and EgressPolicy (namespaced, owned by application teams).
//
// The schema checks everything it can check by itself (addresses, CIDRs, selectors, list lengths) so that
// kubectl apply fails with a message a person can act on; rules that need other objects are reported by
// the manager as status conditions and Events.
//
// +kubebuilder:object:generate=true
// +groupName=egressgw.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the API group and version of the egressgw objects.
	GroupVersion = schema.GroupVersion{Group: "egressgw.io", Version: "v1alpha1"}

	// SchemeBuilder registers the egressgw types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the egressgw types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
