package failover

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
)

// Reasons PolicyIP gives when a policy cannot use any IP.
const (
	ReasonPinNotInGateway = "PinNotInGateway"
	ReasonGatewayHasNoIPs = "GatewayHasNoIPs"
)

// PolicyChoice is the egress IP a policy uses, or why it has none.
type PolicyChoice struct {
	IP      netip.Addr
	Reason  string
	Message string
}

// PolicyIP chooses which of its gateway's IPs a policy uses.
//
// A pin is obeyed when it is one of the gateway's IPs and refused otherwise. Without a pin, the policy
// keeps its current IP while that IP is placed on a node; if it is not, or the policy has none yet, it
// takes the placed IP that ranks first for it (a hash of policy and IP, the same on every replica), or,
// when no IP is placed, the first-ranked IP, so that it starts working as soon as that IP is placed.
// policy identifies the policy, for example "namespace/name".
func PolicyIP(policy string, gatewayIPs []netip.Addr, placed map[netip.Addr]bool, pin, current netip.Addr) PolicyChoice {
	if pin.IsValid() {
		if !slices.Contains(gatewayIPs, pin) {
			return PolicyChoice{Reason: ReasonPinNotInGateway,
				Message: fmt.Sprintf("the pinned egressIP %s is not one of the gateway's egress IPs %v", pin, gatewayIPs)}
		}
		return PolicyChoice{IP: pin}
	}
	if len(gatewayIPs) == 0 {
		return PolicyChoice{Reason: ReasonGatewayHasNoIPs, Message: "the gateway has no egress IPs"}
	}
	if placed[current] && slices.Contains(gatewayIPs, current) {
		return PolicyChoice{IP: current}
	}
	candidates := slices.DeleteFunc(slices.Clone(gatewayIPs), func(ip netip.Addr) bool { return !placed[ip] })
	if len(candidates) == 0 {
		candidates = gatewayIPs
	}
	best := slices.MinFunc(candidates, func(a, b netip.Addr) int {
		if ra, rb := policyRank(policy, a), policyRank(policy, b); ra != rb {
			return cmp.Compare(ra, rb)
		}
		return a.Compare(b)
	})
	return PolicyChoice{IP: best}
}

func policyRank(policy string, ip netip.Addr) uint64 {
	h := fnv.New64a()
	h.Write([]byte(policy))
	h.Write(ip.AsSlice())
	return h.Sum64()
}
