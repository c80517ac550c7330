package gcp

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/providers/contracttest"
	"github.com/egressgw/egressgw/test/gcpsim"
)

// TestContract runs the provider contract against the compute REST protocol in the simulator's model
// project: gw-a1 and gw-a2 share subnetwork gateways-a (10.0.1.0/24, two zones), gw-b3 is in gateways-b
// (10.0.2.0/24, another region); worker-a4 has another tool's alias range 10.0.1.136/30.
func TestContract(t *testing.T) {
	contracttest.Run(t, func(t *testing.T) contracttest.Env {
		e := newEnv(t, gcpsim.Options{})
		// Another tool's alias range of the primary range on the worker, beside its pod range and its /32.
		must(t, e.sim.SetAliases(zoneA1, "worker-a4", "nic0", append(e.sim.Aliases(zoneA1, "worker-a4", "nic0"),
			gcpsim.AliasSpec{IPCIDRRange: "10.0.1.136/30"})))
		return contracttest.Env{
			Provider:    e.provider(t, Options{}),
			A1:          contracttest.Gateway{Node: gwA1, Instance: "gw-a1"},
			A2:          contracttest.Gateway{Node: gwA2, Instance: "gw-a2"},
			B:           contracttest.Gateway{Node: gwB3, Instance: "gw-b3"},
			FreeA:       []netip.Addr{ip("10.0.1.50"), ip("10.0.1.51"), ip("10.0.1.52")},
			FreeB:       []netip.Addr{ip("10.0.2.50")},
			Outside:     ip("192.168.7.7"),
			InUse:       ip("10.0.1.137"), // inside the worker's 10.0.1.136/30: not a /32 egressgw adds
			InUseHolder: "worker-a4",
			Unknown:     providers.Node{Name: "gone", ProviderID: "gce://egressgw-test/us-central1-a/gw-gone"},
			Unsupported: []string{"gce://egressgw-test/gw-a1", "gce://egressgw-test/us-central1-a/gw-a1/extra",
				"gce:///us-central1-a/gw-a1", "gce://egressgw-test/uscentral1/gw-a1", "aws:///us-east-1a/i-0a000000000000001"},
			Where: func(a netip.Addr) (string, bool) {
				h, ok := e.sim.Where(a)
				return h.Instance, ok
			},
			Throttle: func() func() {
				e.sim.Throttle("", 1_000_000)
				return e.sim.ClearFaults
			},
			MutatingCalls: func() int { return e.calls("instances.updateNetworkInterface") },
			FillCapacity: func(t *testing.T, node providers.Node) {
				var fill []gcpsim.AliasSpec // another tool's ranges from the secondary range, up to the limit
				for i := range gcpsim.AliasRangesPerInterface {
					fill = append(fill, gcpsim.AliasSpec{IPCIDRRange: fmt.Sprintf("10.5.%d.0/28", i), SubnetworkRangeName: "pods-b"})
				}
				must(t, e.sim.SetAliases(zoneB3, "gw-b3", "nic0", fill))
			},
		}
	})
}
