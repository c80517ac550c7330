package v1alpha1

// Condition types of EgressGateway and EgressPolicy.
const (
	// ConditionReady: on a gateway, every egress IP is assigned to a healthy node; on a policy, its
	// egress IP is assigned and the datapath can use it.
	ConditionReady = "Ready"
	// ConditionDegraded: a gateway has an IP that is unplaced or moving.
	ConditionDegraded = "Degraded"
	// ConditionAccepted: a policy names an existing gateway that admits its namespace, and a valid pin.
	ConditionAccepted = "Accepted"
)
