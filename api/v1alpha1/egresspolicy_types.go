package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EgressPolicySpec is the desired state of an EgressPolicy: which pods of its namespace leave the cluster
// through which gateway, toward which destinations.
type EgressPolicySpec struct {
	// gatewayName is the EgressGateway whose IP the selected pods use. The gateway must admit this
	// policy's namespace through its namespaceSelector.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="gatewayName must be the name of an EgressGateway: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit"
	GatewayName string `json:"gatewayName"`

	// podSelector picks the pods of this namespace whose traffic uses the egress IP. Empty or absent
	// selects every pod of the namespace.
	// +optional
	PodSelector *LabelSelector `json:"podSelector,omitempty"`

	// destinationCIDRs limits the policy to these destinations. Empty means every destination outside
	// the cluster; traffic to the cluster's own pod, service and node ranges is never steered.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=49
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self)",message="each CIDR must be an address and a prefix length, for example 192.0.2.0/24"
	// +kubebuilder:validation:items:XValidation:rule="!isCIDR(self) || cidr(self).ip().family() == 4",message="only IPv4 CIDRs are supported yet"
	// +kubebuilder:validation:items:XValidation:rule="!isCIDR(self) || cidr(self) == cidr(self).masked()",message="each CIDR must start at the first address of its range (no host bits set): write 192.0.2.0/24, not 192.0.2.1/24"
	DestinationCIDRs []string `json:"destinationCIDRs,omitempty"`

	// excludedCIDRs are destinations that keep the node's own source address even when they fall
	// inside destinationCIDRs.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=49
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self)",message="each CIDR must be an address and a prefix length, for example 192.0.2.0/24"
	// +kubebuilder:validation:items:XValidation:rule="!isCIDR(self) || cidr(self).ip().family() == 4",message="only IPv4 CIDRs are supported yet"
	// +kubebuilder:validation:items:XValidation:rule="!isCIDR(self) || cidr(self) == cidr(self).masked()",message="each CIDR must start at the first address of its range (no host bits set): write 192.0.2.0/24, not 192.0.2.1/24"
	ExcludedCIDRs []string `json:"excludedCIDRs,omitempty"`

	// egressIP pins the policy to one of the gateway's egress IPs. Absent, the manager picks one of the
	// gateway's IPs for the policy and keeps it.
	// +optional
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self) && ip.isCanonical(self)",message="egressIP must be an IP address written in canonical form, for example 10.0.1.50, and one of the gateway's egressIPs"
	EgressIP string `json:"egressIP,omitempty"`

	// whenUnavailable says what the selected pods' traffic toward the destinations does while the policy
	// has no usable egress IP (not placed yet, moving, its gateway gone, its namespace not admitted):
	// Drop (the default) drops it, so that nothing ever reaches a destination with another source
	// address; UseNodeIP lets it leave with the node's own address, for teams that prefer availability
	// over identity.
	// +optional
	// +kubebuilder:default=Drop
	// +kubebuilder:validation:Enum=Drop;UseNodeIP
	WhenUnavailable UnavailableAction `json:"whenUnavailable,omitempty"`
}

// UnavailableAction is what a policy's traffic does while the policy has no usable egress IP.
type UnavailableAction string

const (
	// UnavailableDrop drops the traffic (fail closed).
	UnavailableDrop UnavailableAction = "Drop"
	// UnavailableUseNodeIP lets the traffic leave with the node's address (fail open).
	UnavailableUseNodeIP UnavailableAction = "UseNodeIP"
)

// EgressPolicyStatus is what the manager decided for the policy.
type EgressPolicyStatus struct {
	// observedGeneration is the spec generation this status describes.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Accepted (the gateway exists, admits this namespace, and the pin is one of its IPs) and
	// Ready (the egress IP is assigned to a healthy gateway node).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// egressIP is the gateway IP the selected pods leave with.
	// +optional
	// +kubebuilder:validation:MaxLength=45
	EgressIP string `json:"egressIP,omitempty"`

	// gatewayNode is the node that currently holds egressIP.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	GatewayNode string `json:"gatewayNode,omitempty"`

	// selectedPods is how many running pods the policy selects.
	// +optional
	// +kubebuilder:validation:Minimum=0
	SelectedPods int32 `json:"selectedPods,omitempty"`
}

// EgressPolicy sends the outbound traffic of selected pods of its namespace through an EgressGateway, so
// that it leaves the cluster with one of the gateway's stable IPs.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,shortName=egp,categories=egressgw
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Gateway",type=string,JSONPath=`.spec.gatewayName`
// +kubebuilder:printcolumn:name="Egress IP",type=string,JSONPath=`.status.egressIP`
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.status.gatewayNode`
// +kubebuilder:printcolumn:name="Pods",type=integer,JSONPath=`.status.selectedPods`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Destinations",type=string,JSONPath=`.spec.destinationCIDRs`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type EgressPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec EgressPolicySpec `json:"spec"`
	// +optional
	Status EgressPolicyStatus `json:"status,omitempty"`
}

// EgressPolicyList is a list of EgressPolicies.
// +kubebuilder:object:root=true
type EgressPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []EgressPolicy `json:"items"`
}

func init() {
	SchemeBuilder.Register(&EgressPolicy{}, &EgressPolicyList{})
}
