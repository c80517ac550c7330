package azure

import (
	"net/netip"
	"testing"
	"time"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/providers/contracttest"
)

// TestContract runs the provider contract's table of behaviours against the simulator.
func TestContract(t *testing.T) {
	contracttest.Run(t, func(t *testing.T) contracttest.Env {
		e, p := start(t)
		return contracttest.Env{
			Provider: p,
			A1:       contracttest.Gateway{Node: gw0, Instance: rgID + "/providers/Microsoft.Compute/virtualMachines/aks-gw-12345678-vm0"},
			A2:       contracttest.Gateway{Node: gw1, Instance: rgID + "/providers/Microsoft.Compute/virtualMachines/aks-gw-12345678-vm1"},
			B:        contracttest.Gateway{Node: other, Instance: rgID + "/providers/Microsoft.Compute/virtualMachines/gw-other"},
			FreeA:    []netip.Addr{ip("10.224.0.50"), ip("10.224.0.51"), ip("10.224.0.52")},
			FreeB:    []netip.Addr{ip("10.225.0.50")},
			Outside:  ip("192.0.2.10"),
			// A pod's address of Azure CNI: ip configuration ipconfig2 of the CNI node's NIC, not egressgw's.
			InUse:       ip("10.224.0.21"),
			InUseHolder: rgID + "/providers/Microsoft.Compute/virtualMachines/aks-cni-12345678-vm0",
			Unknown:     gone,
			Unsupported: []string{
				"azure:///subscriptions/" + testSub,
				"azure://" + rgID + "/providers/Microsoft.Network/networkInterfaces/" + gw0NIC,
				uniform.ProviderID, // a Uniform scale set instance: refused with the reason
			},
			Where: func(a netip.Addr) (string, bool) {
				h, ok := e.sim.Where(a)
				return h.Instance, ok
			},
			Throttle: func() func() {
				e.sim.Throttle("", 1_000_000, time.Second)
				return e.sim.ClearFaults
			},
			MutatingCalls: func() int { return e.count(nicWrite) },
			FillCapacity: func(t *testing.T, node providers.Node) { // 255 egress IPs, as earlier Assigns would have left
				must(t, e.sim.AddIPConfigs("gw-other-nic", ipConfigPrefix+"fill-", fill(MaxIPConfigsPerNIC-1)))
			},
		}
	})
}

// fill returns n free addresses of gw-other's subnet (10.225.0.0/22), past the contract's FreeB.
func fill(n int) []netip.Addr {
	var out []netip.Addr
	for a := ip("10.225.1.1"); len(out) < n; a = a.Next() {
		out = append(out, a)
	}
	return out
}
