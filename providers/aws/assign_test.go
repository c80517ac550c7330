package aws

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/test/ec2sim"
)

func TestAssignIsIdempotentAndNeverSteals(t *testing.T) {
	e, p := start(t)
	ctx := t.Context()
	must(t, p.Assign(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.50"), PublicIP: eip1}))
	if h := e.wantOn(t, "10.0.1.50", eniA1); h.ElasticIP != eip1 {
		t.Fatalf("Elastic IP not on the egress IP: %+v", h)
	}
	assigns, associates := e.calls("AssignPrivateIpAddresses"), e.calls("AssociateAddress")
	must(t, p.Assign(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.50"), PublicIP: eip1}))
	if e.calls("AssignPrivateIpAddresses") != assigns || e.calls("AssociateAddress") != associates {
		t.Fatalf("a repeated Assign made mutating calls: %v", e.sim.Actions())
	}
	err := p.Assign(ctx, gwA2, providers.Assignment{IP: ip("10.0.1.50")})
	if !errors.Is(err, providers.ErrAssignedElsewhere) || !strings.Contains(err.Error(), eniA1) {
		t.Fatalf("assigning an IP held by gw-a1 to gw-a2: %v", err)
	}
	e.wantOn(t, "10.0.1.50", eniA1)
	if err := p.Assign(ctx, gwA2, providers.Assignment{IP: ip("10.0.1.11")}); !errors.Is(err, providers.ErrAssignedElsewhere) {
		t.Fatalf("assigning gw-a1's primary address: %v", err)
	}
	e.wantOn(t, "10.0.1.11", eniA1)
}

func TestAssignTakesOverItsElasticIP(t *testing.T) {
	e, p := start(t)
	ctx := t.Context()
	must(t, p.Assign(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.50"), PublicIP: eip1}))
	must(t, p.Assign(ctx, gwA2, providers.Assignment{IP: ip("10.0.1.60"), PublicIP: eip1}))
	if h := e.wantOn(t, "10.0.1.60", eniA2); h.ElasticIP != eip1 {
		t.Fatalf("Elastic IP named for 10.0.1.60 stayed elsewhere: %+v", h)
	}
}

func TestMoveIsOneCallAndTheElasticIPFollows(t *testing.T) {
	var mu sync.Mutex
	var moved []ec2sim.Event
	e := newEnv(t, ec2sim.Options{OnChange: func(ev ec2sim.Event) { mu.Lock(); moved = append(moved, ev); mu.Unlock() }})
	p := e.provider(t, Options{})
	ctx := context.Background()
	must(t, p.Assign(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.50"), PublicIP: eip1}))
	must(t, p.Assign(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.51")}))
	assigns, associates := e.calls("AssignPrivateIpAddresses"), e.calls("AssociateAddress")
	must(t, p.Move(ctx, gwA2, []netip.Addr{ip("10.0.1.51"), ip("10.0.1.50"), ip("10.0.1.52")}))
	if h := e.wantOn(t, "10.0.1.50", eniA2); h.ElasticIP != eip1 {
		t.Fatalf("the Elastic IP did not follow: %+v", h)
	}
	e.wantOn(t, "10.0.1.51", eniA2)
	e.wantOn(t, "10.0.1.52", eniA2) // an IP held nowhere is simply placed
	if e.calls("AssignPrivateIpAddresses") != assigns+1 || e.calls("AssociateAddress") != associates {
		t.Fatalf("a move of three IPs made %d Assign and %d Associate calls", e.calls("AssignPrivateIpAddresses")-assigns, e.calls("AssociateAddress")-associates)
	}
	must(t, p.Move(ctx, gwA2, []netip.Addr{ip("10.0.1.50")})) // already there
	mu.Lock()
	last := moved[len(moved)-3:]
	mu.Unlock()
	for _, ev := range last {
		if ev.Interface != eniA2 {
			t.Fatalf("fabric hook saw %+v", ev)
		}
	}
	if err := p.Move(ctx, gwA2, []netip.Addr{ip("10.0.1.11")}); !errors.Is(err, providers.ErrPermanent) {
		t.Fatalf("moving gw-a1's primary address: %v", err)
	}
	e.wantOn(t, "10.0.1.11", eniA1)
}

func TestReleaseLeavesOtherNodesAlone(t *testing.T) {
	e, p := start(t)
	ctx := t.Context()
	must(t, p.Assign(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.50"), PublicIP: eip1}))
	must(t, p.Release(ctx, gwA2, providers.Assignment{IP: ip("10.0.1.50"), PublicIP: eip1}))
	if h := e.wantOn(t, "10.0.1.50", eniA1); h.ElasticIP != eip1 {
		t.Fatalf("releasing on gw-a2 disturbed gw-a1: %+v", h)
	}
	must(t, p.Release(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.50"), PublicIP: eip1}))
	e.wantOn(t, "10.0.1.50", "")
	must(t, p.Release(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.50"), PublicIP: eip1})) // not there: success
	must(t, p.Release(ctx, gwA1, providers.Assignment{IP: ip("10.0.2.50")}))                 // other subnet: cannot be here
	must(t, p.Assign(ctx, gwA2, providers.Assignment{IP: ip("10.0.1.50"), PublicIP: eip1}))  // the Elastic IP was freed
	if err := p.Release(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.11")}); !errors.Is(err, providers.ErrPermanent) {
		t.Fatalf("releasing the node's primary address: %v", err)
	}
	e.wantOn(t, "10.0.1.11", eniA1)
}

func TestCapacityExhaustion(t *testing.T) {
	e, p := start(t)
	ctx := t.Context()
	must(t, p.Assign(ctx, gwB3, providers.Assignment{IP: ip("10.0.2.50")})) // t3.micro: primary + 1
	err := p.Assign(ctx, gwB3, providers.Assignment{IP: ip("10.0.2.51")})
	if !errors.Is(err, providers.ErrCapacityExhausted) || !strings.Contains(err.Error(), "PrivateIpAddressLimitExceeded") {
		t.Fatalf("want ErrCapacityExhausted with EC2's code, got %v", err)
	}
	e.wantOn(t, "10.0.2.51", "")
	if err := p.Move(ctx, gwB3, []netip.Addr{ip("10.0.2.52"), ip("10.0.2.53")}); !errors.Is(err, providers.ErrCapacityExhausted) {
		t.Fatalf("move beyond capacity: %v", err)
	}
	e.wantOn(t, "10.0.2.52", "")
	info, err := p.DescribeNode(ctx, gwB3)
	must(t, err)
	if info.Free() != 0 {
		t.Fatalf("full node reports %d free", info.Free())
	}
}

func TestWrongSubnetIsRefusedBeforeAnyCall(t *testing.T) {
	e, p := start(t)
	ctx := t.Context()
	if err := p.Assign(ctx, gwA1, providers.Assignment{IP: ip("10.0.2.50")}); !errors.Is(err, providers.ErrOutsideSubnet) {
		t.Fatalf("assign outside the subnet: %v", err)
	}
	err := p.Move(ctx, gwA1, []netip.Addr{ip("10.0.2.50"), ip("10.0.1.60"), ip("10.9.9.9")})
	if !errors.Is(err, providers.ErrOutsideSubnet) || !strings.Contains(err.Error(), "10.0.2.50") || !strings.Contains(err.Error(), "10.9.9.9") {
		t.Fatalf("move with two bad IPs must name both: %v", err)
	}
	if err := p.Assign(ctx, gwA1, providers.Assignment{IP: netip.MustParseAddr("fd00::1")}); !errors.Is(err, providers.ErrPermanent) {
		t.Fatalf("IPv6 egress IP: %v", err)
	}
	e.wantOn(t, "10.0.1.60", "")
	if n := e.calls("AssignPrivateIpAddresses"); n != 0 {
		t.Fatalf("refused requests reached EC2 %d times", n)
	}
}

func TestUnknownInstanceAndElasticIP(t *testing.T) {
	e, p := start(t)
	ctx := t.Context()
	ghost := providers.Node{Name: "ghost", ProviderID: "aws:///us-east-1a/i-0dead000000000001"}
	for _, err := range []error{
		p.Assign(ctx, ghost, providers.Assignment{IP: ip("10.0.1.50")}),
		p.Release(ctx, ghost, providers.Assignment{IP: ip("10.0.1.50")}),
		p.Move(ctx, ghost, []netip.Addr{ip("10.0.1.50")}),
	} {
		if !errors.Is(err, providers.ErrNotFound) || !strings.Contains(err.Error(), "ghost") {
			t.Errorf("unknown instance: %v", err)
		}
	}
	err := p.Assign(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.50"), PublicIP: "eipalloc-0dead000000000001"})
	if !errors.Is(err, providers.ErrNotFound) {
		t.Fatalf("unknown Elastic IP: %v", err)
	}
	if err := p.Assign(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.50"), PublicIP: "198.51.100.10"}); !errors.Is(err, providers.ErrPermanent) {
		t.Fatalf("a public address instead of an allocation ID: %v", err)
	}
	e.wantOn(t, "10.0.1.50", "") // nothing changed before the Elastic IP was known
	if got := slices.Collect(func(yield func(string) bool) {
		for a := range e.sim.Actions() {
			if mutating(a) && !yield(a) {
				return
			}
		}
	}); len(got) != 0 {
		t.Fatalf("mutating calls were made: %v", got)
	}
}

// TestAssignWithoutAPublicIPDisassociatesTheOldOne: publicIP removed from the spec is an Assign without
// one; the Elastic IP leaves the address (and is free for another), the address stays, and a repeat
// changes nothing.
func TestAssignWithoutAPublicIPDisassociatesTheOldOne(t *testing.T) {
	e, p := start(t)
	ctx := t.Context()
	must(t, p.Assign(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.50"), PublicIP: eip1}))
	must(t, p.Assign(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.50")}))
	if h := e.wantOn(t, "10.0.1.50", eniA1); h.ElasticIP != "" {
		t.Fatalf("publicIP removed, but %s is still associated: %+v", h.ElasticIP, h)
	}
	writes := e.calls("DisassociateAddress") + e.calls("AssignPrivateIpAddresses")
	must(t, p.Assign(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.50")}))
	if got := e.calls("DisassociateAddress") + e.calls("AssignPrivateIpAddresses"); got != writes {
		t.Fatalf("repeating the Assign made %d more mutating calls", got-writes)
	}
	must(t, p.Assign(ctx, gwA2, providers.Assignment{IP: ip("10.0.1.51"), PublicIP: eip1}))
	if h := e.wantOn(t, "10.0.1.51", eniA2); h.ElasticIP != eip1 {
		t.Fatalf("the freed Elastic IP did not go to its new address: %+v", h)
	}
}

// TestReservedAddressesAreRefusedUpFront: the first four and the last address of a subnet pass the CRD's
// validation, but EC2 never assigns them; the provider says so without asking EC2, for Assign and Move.
func TestReservedAddressesAreRefusedUpFront(t *testing.T) {
	e, p := start(t)
	ctx := t.Context()
	for _, addr := range []string{"10.0.1.0", "10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.255"} {
		err := p.Assign(ctx, gwA1, providers.Assignment{IP: ip(addr)})
		if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "reserved by AWS") {
			t.Errorf("Assign %s: want a permanent refusal naming the reservation, got %v", addr, err)
		}
		err = p.Move(ctx, gwA1, []netip.Addr{ip("10.0.1.60"), ip(addr)})
		if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), addr+" is reserved by AWS") {
			t.Errorf("Move %s: want a permanent refusal naming the reservation, got %v", addr, err)
		}
	}
	if n := e.calls("AssignPrivateIpAddresses"); n != 0 {
		t.Fatalf("%d AssignPrivateIpAddresses calls for addresses EC2 refuses forever", n)
	}
	must(t, p.Move(ctx, gwA1, []netip.Addr{ip("10.0.1.4"), ip("10.0.1.254")})) // the first and last usable
	e.wantOn(t, "10.0.1.4", eniA1)
	e.wantOn(t, "10.0.1.254", eniA1)
}
