package aws

import (
	"net/netip"
	"testing"
	"time"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/test/ec2sim"
)

// TestReleaseOnAStaleReadLeavesTheNewHoldersElasticIP: the IP and its Elastic IP moved from gw-a1 to
// gw-a2, but Describe still shows them on gw-a1 (EC2's eventual consistency). Releasing on gw-a1 must not
// disassociate by the association ID it read: the association followed the IP to gw-a2.
func TestReleaseOnAStaleReadLeavesTheNewHoldersElasticIP(t *testing.T) {
	clock := ec2sim.NewManualClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	e := newEnv(t, ec2sim.Options{Clock: clock.Now})
	p := e.provider(t, Options{})
	ctx := t.Context()
	must(t, p.Assign(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.50"), PublicIP: eip1}))
	e.sim.SetVisibilityDelay(time.Minute)
	must(t, p.Move(ctx, gwA2, []netip.Addr{ip("10.0.1.50")}))

	err := p.Release(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.50"), PublicIP: eip1})
	t.Logf("release on the stale node: %v", err) // an error is fine: Describe still says the IP is here
	if h := e.wantOn(t, "10.0.1.50", eniA2); h.ElasticIP != eip1 {
		t.Fatalf("the release on gw-a1 took the Elastic IP off gw-a2, which holds the IP now: %+v", h)
	}
	if n := e.calls("DisassociateAddress"); n != 0 {
		t.Fatalf("%d DisassociateAddress calls for an association that is no longer gw-a1's", n)
	}
}

// TestReleaseDropsTheElasticIPWithTheAddress: on a fresh read, a release leaves the Elastic IP free for
// the next holder (EC2 disassociates it with the address; nothing else is called for).
func TestReleaseDropsTheElasticIPWithTheAddress(t *testing.T) {
	e, p := start(t)
	ctx := t.Context()
	must(t, p.Assign(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.50"), PublicIP: eip1}))
	must(t, p.Release(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.50"), PublicIP: eip1}))
	e.wantOn(t, "10.0.1.50", "")
	where, err := p.Locate(ctx, []netip.Addr{ip("10.0.1.50")})
	must(t, err)
	if len(where) != 0 {
		t.Fatalf("released IP still located: %v", where)
	}
	eip, err := p.elasticIP(ctx, eip1)
	must(t, err)
	if eip.AssociationId != nil {
		t.Fatalf("the Elastic IP is still associated after the release: %+v", eip)
	}
}
