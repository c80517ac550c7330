package fake

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/egressgw/egressgw/providers"
)

var (
	nodeA  = providers.Node{Name: "a", ProviderID: "fake:///a"}
	nodeB  = providers.Node{Name: "b", ProviderID: "fake:///b"}
	subnet = netip.MustParsePrefix("10.0.1.0/24")
	ip50   = netip.MustParseAddr("10.0.1.50")
)

func newCloud(capacity int) *Provider {
	p := New()
	p.AddNode(nodeA, providers.NodeInfo{Instance: "i-a", Interface: "eni-a", Subnet: subnet, Capacity: capacity,
		Addresses: []netip.Addr{netip.MustParseAddr("10.0.1.10")}})
	p.AddNode(nodeB, providers.NodeInfo{Instance: "i-b", Interface: "eni-b", Subnet: subnet, Capacity: capacity,
		Addresses: []netip.Addr{netip.MustParseAddr("10.0.1.11")}})
	p.AddPublicIP("pub-1")
	return p
}

func TestAssignKeepsContract(t *testing.T) {
	ctx := context.Background()
	p := newCloud(3)
	if err := p.Assign(ctx, nodeA, providers.Assignment{IP: ip50, PublicIP: "pub-1"}); err != nil {
		t.Fatal(err)
	}
	if err := p.Assign(ctx, nodeA, providers.Assignment{IP: ip50}); err != nil {
		t.Fatalf("repeat assign must succeed: %v", err)
	}
	err := p.Assign(ctx, nodeB, providers.Assignment{IP: ip50})
	if !errors.Is(err, providers.ErrAssignedElsewhere) {
		t.Fatalf("assign held elsewhere: got %v", err)
	}
	if err := p.Assign(ctx, nodeA, providers.Assignment{IP: netip.MustParseAddr("10.0.2.5")}); !errors.Is(err, providers.ErrOutsideSubnet) {
		t.Fatalf("outside subnet: got %v", err)
	}
	if owner, _ := p.Owner(ip50); owner != nodeA.ProviderID {
		t.Fatalf("owner %q", owner)
	}
	if target, _ := p.PublicTarget("pub-1"); target != ip50 {
		t.Fatalf("public IP follows %v", target)
	}
}

func TestMoveIsAllOrNothingOnCapacity(t *testing.T) {
	ctx := context.Background()
	p := newCloud(2)
	ips := []netip.Addr{ip50, netip.MustParseAddr("10.0.1.51")}
	if err := p.Move(ctx, nodeB, ips); !errors.Is(err, providers.ErrCapacityExhausted) {
		t.Fatalf("got %v", err)
	}
	if _, ok := p.Owner(ip50); ok {
		t.Fatal("a failed move placed an IP")
	}
	if err := p.Move(ctx, nodeB, ips[:1]); err != nil {
		t.Fatal(err)
	}
	if err := p.Move(ctx, nodeA, ips[:1]); err != nil {
		t.Fatal(err)
	}
	if owner, _ := p.Owner(ip50); owner != nodeA.ProviderID {
		t.Fatalf("owner after move %q", owner)
	}
	if err := p.Move(ctx, nodeA, []netip.Addr{netip.MustParseAddr("10.0.1.11")}); !errors.Is(err, providers.ErrPermanent) {
		t.Fatalf("moving a primary address: got %v", err)
	}
}

func TestReleaseNeverTouchesAnotherNode(t *testing.T) {
	ctx := context.Background()
	p := newCloud(3)
	if err := p.Assign(ctx, nodeA, providers.Assignment{IP: ip50}); err != nil {
		t.Fatal(err)
	}
	if err := p.Release(ctx, nodeB, providers.Assignment{IP: ip50}); err != nil {
		t.Fatal(err)
	}
	if owner, _ := p.Owner(ip50); owner != nodeA.ProviderID {
		t.Fatal("release on the wrong node removed the IP")
	}
	if err := p.Release(ctx, nodeA, providers.Assignment{IP: ip50}); err != nil {
		t.Fatal(err)
	}
	locs, err := p.Locate(ctx, []netip.Addr{ip50})
	if err != nil || len(locs) != 0 {
		t.Fatalf("locate after release: %v %v", locs, err)
	}
}

func TestInjectedErrorsAndDelaysAreRecorded(t *testing.T) {
	p := newCloud(3)
	boom := errors.New("boom")
	p.FailNext(Assign, boom)
	p.SetDelay(Locate, time.Hour)
	if err := p.Assign(context.Background(), nodeA, providers.Assignment{IP: ip50}); !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	if _, ok := p.Owner(ip50); ok {
		t.Fatal("a failed call changed the cloud")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Locate(ctx, []netip.Addr{ip50}); !errors.Is(err, context.Canceled) {
		t.Fatalf("delayed call with a cancelled context: %v", err)
	}
	calls := p.Calls()
	if len(calls) != 2 || calls[0].Method != Assign || calls[0].Err != boom || calls[1].Method != Locate {
		t.Fatalf("calls %+v", calls)
	}
}

func TestWithoutMoverIsNoMoverAndSharesTheCloud(t *testing.T) {
	p := newCloud(3)
	two := p.WithoutMover()
	if _, ok := two.(providers.Mover); ok {
		t.Fatal("WithoutMover still implements providers.Mover")
	}
	ctx := context.Background()
	if err := two.Assign(ctx, nodeA, providers.Assignment{IP: ip50}); err != nil {
		t.Fatal(err)
	}
	if err := two.Assign(ctx, nodeB, providers.Assignment{IP: ip50}); !errors.Is(err, providers.ErrAssignedElsewhere) {
		t.Fatalf("assign held elsewhere: got %v", err)
	}
	if err := two.Release(ctx, nodeA, providers.Assignment{IP: ip50}); err != nil {
		t.Fatal(err)
	}
	if err := two.Assign(ctx, nodeB, providers.Assignment{IP: ip50}); err != nil {
		t.Fatal(err)
	}
	if owner, _ := p.Owner(ip50); owner != nodeB.ProviderID {
		t.Fatalf("owner %q, want %s", owner, nodeB.ProviderID)
	}
	if n := len(p.Calls()); n != 4 {
		t.Fatalf("%d calls recorded on the shared fake, want 4", n)
	}
}

// TestInstanceNames: InstanceOf and InstanceNode map the nodes added to the fake to their instances and
// back; anything else is ErrUnsupportedNode.
func TestInstanceNames(t *testing.T) {
	p := newCloud(3)
	if got, err := p.InstanceOf(nodeB.ProviderID); err != nil || got != "i-b" {
		t.Fatalf("InstanceOf(%s) = %q, %v; want i-b", nodeB.ProviderID, got, err)
	}
	if got, err := p.WithoutMover().InstanceNode("i-a"); err != nil || got.Name != nodeA.Name || got.ProviderID != nodeA.ProviderID {
		t.Fatalf("InstanceNode(i-a) = %+v, %v; want %+v", got, err, nodeA)
	}
	if _, err := p.InstanceOf("fake:///nobody"); !errors.Is(err, providers.ErrUnsupportedNode) {
		t.Fatalf("InstanceOf of an unknown providerID: %v", err)
	}
	if _, err := p.InstanceNode("i-nobody"); !errors.Is(err, providers.ErrUnsupportedNode) {
		t.Fatalf("InstanceNode of an unknown instance: %v", err)
	}
}
