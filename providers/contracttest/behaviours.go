package contracttest

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/egressgw/egressgw/providers"
)

// behaviours is the contract, one row per behaviour of providers.Provider's documentation.
var behaviours = []behaviour{
	{"describe", describe},
	{"assign", assign},
	{"assign-idempotent", assignIdempotent},
	{"assigned-elsewhere", assignedElsewhere},
	{"move", move},
	{"release", release},
	{"release-only-address", releaseOnlyAddress},
	{"release-not-assigned", releaseNotAssigned},
	{"release-primary-refused", releasePrimaryRefused},
	{"locate", locate},
	{"locate-nowhere", locateNowhere},
	{"capacity", capacity},
	{"wrong-subnet", wrongSubnet},
	{"unknown-node", unknownNode},
	{"unsupported-node", unsupportedNode},
	{"throttled", throttled},
	{"in-use-never-taken", inUseNeverTaken},
	{"instance-names", instanceNames},
}

// describe: DescribeNode reports the NIC, its subnet (containing the gateway's free addresses), the
// primary address first, and room left.
func describe(t *testing.T, e Env) {
	a1, a2, b := e.describe(t, e.A1), e.describe(t, e.A2), e.describe(t, e.B)
	if a1.Instance == "" || a1.Interface == "" || a1.SubnetID == "" {
		t.Errorf("DescribeNode(%s) names no instance, interface or subnet: %+v", e.A1.Node.Name, a1)
	}
	for _, ip := range e.FreeA {
		if !a1.Subnet.Contains(ip) {
			t.Errorf("subnet %s of %s does not contain %s", a1.Subnet, e.A1.Node.Name, ip)
		}
	}
	if a1.SubnetID != a2.SubnetID || a1.SubnetID == b.SubnetID {
		t.Errorf("want A1 and A2 in one subnet and B in another: %s, %s, %s", a1.SubnetID, a2.SubnetID, b.SubnetID)
	}
	if a1.Subnet.Contains(e.FreeB[0]) || a1.Subnet.Contains(e.Outside) || !b.Subnet.Contains(e.FreeB[0]) {
		t.Errorf("subnets %s and %s do not separate %s and %s", a1.Subnet, b.Subnet, e.FreeB[0], e.Outside)
	}
	if len(a1.Addresses) == 0 || a1.Free() < 1 || a1.Capacity < len(a1.Addresses) {
		t.Errorf("A1 must hold its primary address and have room: %+v", a1)
	}
}

// assign: the IP lands on the node, and DescribeNode counts it.
func assign(t *testing.T, e Env) {
	before := e.describe(t, e.A1)
	ip := e.FreeA[0]
	e.must(t, e.Provider.Assign(ctxFor(t), e.A1.Node, providers.Assignment{IP: ip}))
	e.wantOn(t, ip, &e.A1)
	after := e.describe(t, e.A1)
	if !slices.Contains(after.Addresses, ip) || after.Free() != before.Free()-1 {
		t.Errorf("DescribeNode after Assign: want %s among %v and %d free, got %d", ip, after.Addresses, before.Free()-1, after.Free())
	}
}

// assign-idempotent: assigning what is there is success, without a mutating call.
func assignIdempotent(t *testing.T, e Env) {
	ip := e.FreeA[0]
	e.must(t, e.Provider.Assign(ctxFor(t), e.A1.Node, providers.Assignment{IP: ip}))
	var calls int
	if e.MutatingCalls != nil {
		calls = e.MutatingCalls()
	}
	e.must(t, e.Provider.Assign(ctxFor(t), e.A1.Node, providers.Assignment{IP: ip}))
	if e.MutatingCalls != nil && e.MutatingCalls() != calls {
		t.Errorf("a repeated Assign made %d mutating calls", e.MutatingCalls()-calls)
	}
	e.wantOn(t, ip, &e.A1)
}

// assigned-elsewhere: Assign never takes an IP (egress or primary) from another node.
func assignedElsewhere(t *testing.T, e Env) {
	ip := e.FreeA[0]
	e.must(t, e.Provider.Assign(ctxFor(t), e.A1.Node, providers.Assignment{IP: ip}))
	err := e.Provider.Assign(ctxFor(t), e.A2.Node, providers.Assignment{IP: ip})
	if !errors.Is(err, providers.ErrAssignedElsewhere) {
		t.Errorf("Assign to A2 of an IP on A1: want ErrAssignedElsewhere, got %v", err)
	}
	e.wantOn(t, ip, &e.A1)
	primary := e.describe(t, e.A1).Addresses[0]
	if err := e.Provider.Assign(ctxFor(t), e.A2.Node, providers.Assignment{IP: primary}); !errors.Is(err, providers.ErrAssignedElsewhere) {
		t.Errorf("Assign to A2 of A1's primary address: want ErrAssignedElsewhere, got %v", err)
	}
	e.wantOn(t, primary, &e.A1)
}

// move: with a Mover one call; otherwise Release on the old node, then Assign on the new one.
func move(t *testing.T, e Env) {
	ip := e.FreeA[0]
	e.must(t, e.Provider.Assign(ctxFor(t), e.A1.Node, providers.Assignment{IP: ip}))
	if m, ok := e.Provider.(providers.Mover); ok {
		e.must(t, m.Move(ctxFor(t), e.A2.Node, []netip.Addr{ip}))
	} else {
		e.must(t, e.Provider.Release(ctxFor(t), e.A1.Node, providers.Assignment{IP: ip}))
		e.wantOn(t, ip, nil)
		e.must(t, e.Provider.Assign(ctxFor(t), e.A2.Node, providers.Assignment{IP: ip}))
	}
	e.wantOn(t, ip, &e.A2)
	if got := e.describe(t, e.A1).Addresses; slices.Contains(got, ip) {
		t.Errorf("A1 still lists %s after the move: %v", ip, got)
	}
}

// release: the IP leaves the node; releasing again is success.
func release(t *testing.T, e Env) {
	ip := e.FreeA[0]
	e.must(t, e.Provider.Assign(ctxFor(t), e.A1.Node, providers.Assignment{IP: ip}))
	e.must(t, e.Provider.Release(ctxFor(t), e.A1.Node, providers.Assignment{IP: ip}))
	e.wantOn(t, ip, nil)
	if got := e.describe(t, e.A1).Addresses; slices.Contains(got, ip) {
		t.Errorf("A1 still lists %s after Release: %v", ip, got)
	}
	e.must(t, e.Provider.Release(ctxFor(t), e.A1.Node, providers.Assignment{IP: ip}))
}

// release-only-address: releasing the only egress IP of a node (B holds nothing else but its primary)
// empties it, on clouds whose write is a PATCH of the whole list too.
func releaseOnlyAddress(t *testing.T, e Env) {
	ip := e.FreeB[0]
	before := len(e.describe(t, e.B).Addresses)
	e.must(t, e.Provider.Assign(ctxFor(t), e.B.Node, providers.Assignment{IP: ip}))
	e.must(t, e.Provider.Release(ctxFor(t), e.B.Node, providers.Assignment{IP: ip}))
	e.wantOn(t, ip, nil)
	if got := e.describe(t, e.B).Addresses; len(got) != before {
		t.Errorf("B lists %v after releasing its only egress IP", got)
	}
}

// release-not-assigned: an IP held nowhere, outside the subnet, or by another node is left alone.
func releaseNotAssigned(t *testing.T, e Env) {
	e.must(t, e.Provider.Release(ctxFor(t), e.A1.Node, providers.Assignment{IP: e.FreeA[1]}))
	e.must(t, e.Provider.Release(ctxFor(t), e.A1.Node, providers.Assignment{IP: e.Outside}))
	ip := e.FreeA[0]
	e.must(t, e.Provider.Assign(ctxFor(t), e.A2.Node, providers.Assignment{IP: ip}))
	e.must(t, e.Provider.Release(ctxFor(t), e.A1.Node, providers.Assignment{IP: ip}))
	e.wantOn(t, ip, &e.A2)
}

// release-primary-refused: a NIC's primary address is never released.
func releasePrimaryRefused(t *testing.T, e Env) {
	primary := e.describe(t, e.A1).Addresses[0]
	err := e.Provider.Release(ctxFor(t), e.A1.Node, providers.Assignment{IP: primary})
	if !errors.Is(err, providers.ErrPermanent) {
		t.Errorf("Release of the primary address %s: want ErrPermanent, got %v", primary, err)
	}
	e.wantOn(t, primary, &e.A1)
}

// locate: egress IPs on two subnets and a primary address are found where the simulator has them.
func locate(t *testing.T, e Env) {
	e.must(t, e.Provider.Assign(ctxFor(t), e.A1.Node, providers.Assignment{IP: e.FreeA[0]}))
	e.must(t, e.Provider.Assign(ctxFor(t), e.B.Node, providers.Assignment{IP: e.FreeB[0]}))
	a1, a2, b := e.describe(t, e.A1), e.describe(t, e.A2), e.describe(t, e.B)
	primary := a2.Addresses[0]
	got, err := e.Provider.Locate(ctxFor(t), []netip.Addr{e.FreeA[0], e.FreeB[0], e.FreeA[1], primary})
	e.must(t, err)
	want := map[netip.Addr]providers.Location{
		e.FreeA[0]: {IP: e.FreeA[0], Instance: a1.Instance, Interface: a1.Interface},
		e.FreeB[0]: {IP: e.FreeB[0], Instance: b.Instance, Interface: b.Interface},
		primary:    {IP: primary, Instance: a2.Instance, Interface: a2.Interface, Primary: true},
	}
	if len(got) != len(want) {
		t.Errorf("Locate: want %d IPs found, got %v", len(want), got)
	}
	for ip, w := range want {
		if g := got[ip]; g.IP != w.IP || g.Instance != w.Instance || g.Interface != w.Interface || g.Primary != w.Primary {
			t.Errorf("Locate(%s): want %+v, got %+v", ip, w, g)
		}
	}
}

// locate-nowhere: IPs held nowhere are absent, and that is no error.
func locateNowhere(t *testing.T, e Env) {
	got, err := e.Provider.Locate(ctxFor(t), []netip.Addr{e.FreeA[2], e.Outside})
	e.must(t, err)
	if len(got) != 0 {
		t.Errorf("Locate of IPs held nowhere: want none, got %v", got)
	}
}

// capacity: a full NIC refuses one more IP with ErrCapacityExhausted, and nothing lands.
func capacity(t *testing.T, e Env) {
	extra := e.fill(t)
	if free := e.describe(t, e.B).Free(); free != 0 {
		t.Fatalf("B is full but DescribeNode reports %d free", free)
	}
	err := e.Provider.Assign(ctxFor(t), e.B.Node, providers.Assignment{IP: extra})
	if !errors.Is(err, providers.ErrCapacityExhausted) {
		t.Errorf("Assign to a full NIC: want ErrCapacityExhausted, got %v", err)
	}
	e.wantOn(t, extra, nil)
}

// fill fills B and returns a free address of B's subnet that is not on it.
func (e Env) fill(t *testing.T) netip.Addr {
	if e.FillCapacity != nil {
		e.FillCapacity(t, e.B.Node)
		return e.FreeB[0]
	}
	free := e.describe(t, e.B).Free()
	if len(e.FreeB) <= free {
		t.Fatalf("contracttest: B has room for %d more IPs; Env.FreeB needs %d addresses (or set FillCapacity)", free, free+1)
	}
	for _, ip := range e.FreeB[:free] {
		e.must(t, e.Provider.Assign(ctxFor(t), e.B.Node, providers.Assignment{IP: ip}))
	}
	return e.FreeB[free]
}

// wrong-subnet: an IP of another subnet, or of none, is ErrOutsideSubnet and lands nowhere.
func wrongSubnet(t *testing.T, e Env) {
	for _, ip := range []netip.Addr{e.FreeB[0], e.Outside} {
		err := e.Provider.Assign(ctxFor(t), e.A1.Node, providers.Assignment{IP: ip})
		if !errors.Is(err, providers.ErrOutsideSubnet) {
			t.Errorf("Assign of %s to A1: want ErrOutsideSubnet, got %v", ip, err)
		}
		e.wantOn(t, ip, nil)
	}
}

// unknown-node: a node whose instance does not exist is ErrNotFound for every method that takes a node.
func unknownNode(t *testing.T, e Env) {
	e.forEachNodeMethod(t, e.Unknown, providers.ErrNotFound)
	e.wantOn(t, e.FreeA[0], nil)
}

// unsupported-node: providerIDs of other clouds, none, and malformed ones are ErrUnsupportedNode.
func unsupportedNode(t *testing.T, e Env) {
	ids := append([]string{"", "kind://docker/kind/kind-worker", "openstack:///8f6b0c2e-1d1a-4c55-9d0e-3b7f1f0c9a21"}, e.Unsupported...)
	for _, id := range ids {
		e.forEachNodeMethod(t, providers.Node{Name: "odd", ProviderID: id}, providers.ErrUnsupportedNode)
	}
}

func (e Env) forEachNodeMethod(t *testing.T, node providers.Node, want error) {
	t.Helper()
	a := providers.Assignment{IP: e.FreeA[0]}
	_, derr := e.Provider.DescribeNode(ctxFor(t), node)
	for method, err := range map[string]error{
		"DescribeNode": derr,
		"Assign":       e.Provider.Assign(ctxFor(t), node, a),
		"Release":      e.Provider.Release(ctxFor(t), node, a),
	} {
		if !errors.Is(err, want) {
			t.Errorf("%s(providerID %q): want %v, got %v", method, node.ProviderID, want, err)
		}
	}
}

// throttled: a cloud that keeps throttling is ErrThrottled (retryable) at the deadline, with nothing
// changed; once the throttling ends, the same call succeeds.
func throttled(t *testing.T, e Env) {
	ip := e.FreeA[0]
	wait := e.ThrottledWait
	if wait <= 0 {
		wait = 500 * time.Millisecond
	}
	end := e.Throttle()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	err := e.Provider.Assign(ctx, e.A1.Node, providers.Assignment{IP: ip})
	cancel()
	end()
	if !errors.Is(err, providers.ErrThrottled) || !providers.Retryable(err) {
		t.Errorf("Assign while throttled: want ErrThrottled, got %v", err)
	}
	e.wantOn(t, ip, nil)
	e.must(t, e.Provider.Assign(ctxFor(t), e.A1.Node, providers.Assignment{IP: ip}))
	e.wantOn(t, ip, &e.A1)
}

// in-use-never-taken: an address on a NIC that is not egressgw's is located as in use, and neither Assign
// nor Move takes it (ErrIPInUse).
func inUseNeverTaken(t *testing.T, e Env) {
	if !e.InUse.IsValid() {
		t.Skip("Env.InUse is not set: this provider does not tell egressgw's NICs from others")
	}
	locs, err := e.Provider.Locate(ctxFor(t), []netip.Addr{e.InUse})
	e.must(t, err)
	if locs[e.InUse].InUse == "" {
		t.Errorf("Locate of another tool's address: want Location.InUse set, got %+v", locs[e.InUse])
	}
	if err := e.Provider.Assign(ctxFor(t), e.A1.Node, providers.Assignment{IP: e.InUse}); !errors.Is(err, providers.ErrIPInUse) {
		t.Errorf("Assign of another tool's address: want ErrIPInUse, got %v", err)
	}
	if m, ok := e.Provider.(providers.Mover); ok {
		if err := m.Move(ctxFor(t), e.A1.Node, []netip.Addr{e.InUse}); !errors.Is(err, providers.ErrIPInUse) {
			t.Errorf("Move of another tool's address: want ErrIPInUse, got %v", err)
		}
	}
	if got, ok := e.Where(e.InUse); !ok || got != e.InUseHolder {
		t.Errorf("%s: want it left on %s, the simulator has it on %q", e.InUse, e.InUseHolder, got)
	}
}

func (e Env) describe(t *testing.T, g Gateway) providers.NodeInfo {
	t.Helper()
	info, err := e.Provider.DescribeNode(ctxFor(t), g.Node)
	if err != nil {
		t.Fatalf("DescribeNode(%s): %v", g.Node.Name, err)
	}
	return info
}

// wantOn fails unless the simulator has ip on g's instance (nil: nowhere).
func (e Env) wantOn(t *testing.T, ip netip.Addr, g *Gateway) {
	t.Helper()
	got, ok := e.Where(ip)
	switch {
	case g == nil && ok:
		t.Errorf("%s: want nowhere, the simulator has it on %s", ip, got)
	case g != nil && (!ok || got != g.Instance):
		t.Errorf("%s: want on %s (%s), the simulator has it on %q", ip, g.Node.Name, g.Instance, got)
	}
}

func (e Env) must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
