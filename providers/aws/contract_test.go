package aws

import (
	"net/netip"
	"testing"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/providers/contracttest"
	"github.com/egressgw/egressgw/test/ec2sim"
)

// TestContract runs the provider contract against EC2's wire protocol in the simulator's model VPC:
// gw-a1 and gw-a2 share subnet 10.0.1.0/24, gw-b3 (a t3.micro, room for one egress IP) is in 10.0.2.0/24.
func TestContract(t *testing.T) {
	contracttest.Run(t, func(t *testing.T) contracttest.Env { return contractEnv(t, Options{}) })
}

// TestContractDedicated runs the contract in the default mode: each gateway's egress IPs on its dedicated
// interface, ensured first as the manager does for every gateway candidate.
func TestContractDedicated(t *testing.T) {
	contracttest.Run(t, func(t *testing.T) contracttest.Env {
		env := contractEnv(t, dedicated())
		for _, g := range []contracttest.Gateway{env.A1, env.A2, env.B} {
			if _, err := env.Provider.(providers.Attacher).EnsureAttachment(t.Context(), g.Node); err != nil {
				t.Fatal(err)
			}
		}
		return env
	})
}

func contractEnv(t *testing.T, opts Options) contracttest.Env {
	{
		e := newEnv(t, ec2sim.Options{})
		return contracttest.Env{
			Provider:    e.provider(t, opts),
			A1:          contracttest.Gateway{Node: gwA1, Instance: "i-0a000000000000001"},
			A2:          contracttest.Gateway{Node: gwA2, Instance: "i-0a000000000000002"},
			B:           contracttest.Gateway{Node: gwB3, Instance: "i-0b000000000000003"},
			FreeA:       []netip.Addr{ip("10.0.1.50"), ip("10.0.1.51"), ip("10.0.1.52")},
			FreeB:       []netip.Addr{ip("10.0.2.50"), ip("10.0.2.51")},
			Outside:     ip("192.168.7.7"),
			InUse:       ip("10.0.1.140"), // the worker's untagged interface's: another tool's
			InUseHolder: "i-0c000000000000004",
			Unknown:     providers.Node{Name: "gone", ProviderID: "aws:///us-east-1a/i-0a00000000000dead"},
			Unsupported: []string{"aws:///us-east-1a/not-an-instance", "aws:///us-east-1a/extra/i-0a000000000000001",
				"aws:///eu-west-1a/i-0a000000000000001"},
			Where: func(a netip.Addr) (string, bool) {
				h, ok := e.sim.Where(a)
				return h.Instance, ok
			},
			Throttle: func() func() {
				e.sim.Throttle("", 1_000_000)
				return e.sim.ClearFaults
			},
			MutatingCalls: func() int {
				n := 0
				for action, c := range e.sim.Actions() {
					if mutating(action) {
						n += c
					}
				}
				return n
			},
		}
	}
}
