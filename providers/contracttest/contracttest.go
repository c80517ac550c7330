// Package contracttest is the one table of behaviours that every egressgw cloud provider must show, run
// against the provider's real SDK client and its wire-level simulator (test/ec2sim, test/gcpsim, ...).
//
// A provider's test file calls Run with a function that builds a fresh Env for each behaviour:
//
//	func TestContract(t *testing.T) {
//		contracttest.Run(t, func(t *testing.T) contracttest.Env {
//			sim := ...                         // a new simulator, closed in t.Cleanup
//			return contracttest.Env{Provider: ..., A1: ..., A2: ..., B: ..., Where: sim.Where, ...}
//		})
//	}
//
// Each behaviour runs as a subtest with its own Env, so a simulator never carries state from one to the
// next. The suite asserts on the simulator's truth (Env.Where), not only on the errors the provider returns.
//
// The API is stable: Run, Env, Gateway and the field names below. New behaviours may be added to the
// table; new Env fields are optional (a zero value keeps the old meaning).
//
// Behaviours (subtest names): describe, assign, assign-idempotent, assigned-elsewhere, move,
// release, release-only-address, release-not-assigned, release-primary-refused, locate, locate-nowhere, capacity,
// wrong-subnet, unknown-node, unsupported-node, throttled, in-use-never-taken, instance-names.
package contracttest

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/egressgw/egressgw/providers"
)

// Gateway is a node of the simulated cloud together with what the simulator calls its instance.
type Gateway struct {
	Node providers.Node
	// Instance is the simulator's name of the node's instance, as Env.Where reports it.
	Instance string
}

// Env is one fresh simulated cloud and a provider talking to it.
type Env struct {
	Provider providers.Provider
	// A1 and A2 are two gateways in one subnet; B is a gateway in another subnet, holding no egress IP
	// (release-only-address empties it). B must have room for a few egress IPs only (the capacity
	// behaviour fills it), unless FillCapacity is set.
	A1, A2, B Gateway
	// FreeA are at least three addresses of A1's subnet that no NIC holds and the cloud would hand out.
	// FreeB are free addresses of B's subnet: at least one more than B has room for (DescribeNode's
	// Free), unless FillCapacity is set, and at least one.
	FreeA, FreeB []netip.Addr
	// Outside is an address in no subnet of the cloud.
	Outside netip.Addr
	// Unknown is a node whose providerID is of this cloud's form but names no instance.
	Unknown providers.Node
	// Unsupported are providerIDs this provider must refuse as ErrUnsupportedNode, besides the ones the
	// suite always tries (empty, and another cloud's). Malformed forms of the cloud's own scheme belong here.
	Unsupported []string

	// Where returns the instance on which the simulator really has ip ("" and false: nowhere).
	Where func(ip netip.Addr) (instance string, ok bool)
	// Throttle makes the simulator refuse every request for rate reasons (EC2 RequestLimitExceeded, GCP
	// 429 rateLimitExceeded, ...) until the returned function is called.
	Throttle func() (end func())
	// MutatingCalls, when set, counts the mutating requests the simulator has received so far; the suite
	// then checks that an idempotent Assign makes none.
	MutatingCalls func() int
	// FillCapacity, when set, fills node's NIC to its limit in the simulator (as another tool of the
	// account would). Without it the suite fills B with Assign calls of FreeB.
	FillCapacity func(t *testing.T, node providers.Node)
	// ThrottledWait bounds the throttled call; default 500ms.
	ThrottledWait time.Duration
	// InUse, when set, is an address of A1's subnet that the cloud has on a NIC that is not egressgw's (a
	// pod's address on a NIC the CNI manages, another tool's), on instance InUseHolder as Env.Where names
	// it. A provider that cannot tell egressgw's NICs from others leaves it unset, and in-use-never-taken
	// is skipped.
	InUse       netip.Addr
	InUseHolder string
}

// behaviour is one row of the table.
type behaviour struct {
	name string
	run  func(t *testing.T, e Env)
}

// Run runs every behaviour of the contract, each against its own Env from newEnv.
func Run(t *testing.T, newEnv func(t *testing.T) Env) {
	for _, b := range behaviours {
		t.Run(b.name, func(t *testing.T) {
			e := newEnv(t)
			e.check(t)
			b.run(t, e)
		})
	}
}

// check refuses an Env the suite cannot run on, saying what is missing.
func (e Env) check(t *testing.T) {
	t.Helper()
	switch {
	case e.Provider == nil:
		t.Fatal("contracttest: Env.Provider is nil")
	case e.Where == nil || e.Throttle == nil:
		t.Fatal("contracttest: Env.Where and Env.Throttle are required")
	case len(e.FreeA) < 3 || len(e.FreeB) < 1:
		t.Fatalf("contracttest: need at least 3 FreeA and 1 FreeB addresses, got %d and %d", len(e.FreeA), len(e.FreeB))
	case !e.Outside.IsValid() || e.Unknown.ProviderID == "":
		t.Fatal("contracttest: Env.Outside and Env.Unknown are required")
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
