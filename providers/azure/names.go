package azure

import (
	"net/netip"
	"strings"
)

// ipConfigPrefix marks the ip configurations egressgw owns: the provider never changes or removes any
// other, and recovery recognizes its own by name.
const ipConfigPrefix = "egressgw-"

// ipConfigName is the deterministic name of ip's configuration, e.g. egressgw-10-224-0-50, so that a
// repeated Assign (after a crash or by a new leader) finds what an earlier one wrote.
func ipConfigName(ip netip.Addr) string {
	return ipConfigPrefix + strings.ReplaceAll(ip.String(), ".", "-")
}

func ours(name string) bool {
	return len(name) >= len(ipConfigPrefix) && strings.EqualFold(name[:len(ipConfigPrefix)], ipConfigPrefix)
}
