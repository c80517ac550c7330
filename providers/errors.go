package providers

import "errors"

// Sentinel errors of the provider contract. Providers wrap them with context (which node, which IP, and the
// cloud's own error code), so callers test with errors.Is and show err.Error() to a person.
var (
	// ErrNotFound: the node's instance or NIC, or the public IP named by an Assignment, does not exist in the
	// cloud (deleted, terminated, or in another account or region).
	ErrNotFound = errors.New("not found in the cloud")

	// ErrCapacityExhausted: the node's NIC cannot hold another address (per instance type on AWS).
	ErrCapacityExhausted = errors.New("no IP capacity left on the node")

	// ErrOutsideSubnet: the IP is not inside the subnet of the node's NIC, so the cloud cannot attach it there.
	ErrOutsideSubnet = errors.New("IP is outside the node's subnet")

	// ErrAssignedElsewhere: Assign found the IP on another node and refused to take it away. Use a Mover, or
	// Release it from the other node first.
	ErrAssignedElsewhere = errors.New("IP is assigned to another node")

	// ErrIPInUse: the cloud has the IP on a NIC that is not one of egressgw's egress NICs (a pod's address on
	// a NIC the CNI manages, another tool's address, a NIC's primary address), or cannot tell which network
	// the IP is in. egressgw never takes it; the message names the holder and what to change.
	ErrIPInUse = errors.New("IP is in use outside egressgw")

	// ErrThrottled: the cloud (or the provider's own rate limiter) kept refusing for rate reasons until the
	// caller's context ran out. Retry later, failover work first.
	ErrThrottled = errors.New("throttled by the cloud API")

	// ErrUnavailable: the cloud answered with server errors (5xx) or could not be reached until the caller's
	// context ran out. Retry later.
	ErrUnavailable = errors.New("cloud API unavailable")

	// ErrPermanent: the cloud refused the request for a reason that retrying will not fix (permissions,
	// invalid parameters, the IP is a NIC's primary address). The wrapped message says what to change.
	ErrPermanent = errors.New("cloud refused the request")

	// ErrUnsupportedNode: the node cannot be driven by this provider (its providerID is missing or belongs to
	// another cloud or an unsupported form).
	ErrUnsupportedNode = errors.New("node not supported by this provider")
)

// Retryable reports whether err is worth retrying later unchanged: throttling or an unavailable cloud.
func Retryable(err error) bool {
	return errors.Is(err, ErrThrottled) || errors.Is(err, ErrUnavailable)
}
