package aws

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/egressgw/egressgw/providers"
)

func TestDescribeNodeFindsThePrimaryInterfaceAndItsRoom(t *testing.T) {
	e, p := start(t)
	ctx := t.Context()
	info, err := p.DescribeNode(ctx, gwA1)
	must(t, err)
	want := providers.NodeInfo{Instance: "i-0a000000000000001", Interface: eniA1, Zone: "us-east-1a", SubnetID: "subnet-0a000000000000001",
		Subnet: netip.MustParsePrefix("10.0.1.0/24"), Capacity: 10, Addresses: []netip.Addr{ip("10.0.1.11")}}
	if !equalInfo(info, want) || info.Free() != 9 {
		t.Fatalf("gw-a1:\n got %+v\nwant %+v", info, want)
	}
	info, err = p.DescribeNode(ctx, worker) // two interfaces: the one at device index 0, primary address first
	must(t, err)
	if info.Interface != "eni-0c000000000000004" || !slices.Equal(info.Addresses, []netip.Addr{ip("10.0.1.14"), ip("10.0.1.140")}) {
		t.Fatalf("worker: %+v", info)
	}
	info, err = p.DescribeNode(ctx, gwB3)
	must(t, err)
	if info.Capacity != 2 || info.Free() != 1 || info.Zone != "us-east-1b" {
		t.Fatalf("gw-b3 (t3.micro): %+v", info)
	}
	if e.calls("DescribeInstanceTypes") != 2 || e.calls("DescribeSubnets") != 2 {
		t.Fatalf("instance types and subnets are read once each: %v", e.sim.Actions())
	}
}

func TestDescribeNodeRefusesNodesItCannotDrive(t *testing.T) {
	e, p := start(t)
	ctx := t.Context()
	cases := []struct {
		node providers.Node
		want error
	}{
		{providers.Node{Name: "unknown", ProviderID: "aws:///us-east-1a/i-0dead000000000001"}, providers.ErrNotFound},
		{providers.Node{Name: "gce", ProviderID: "gce://project/us-central1-a/vm-1"}, providers.ErrUnsupportedNode},
		{providers.Node{Name: "empty"}, providers.ErrUnsupportedNode},
		{providers.Node{Name: "other-region", ProviderID: "aws:///eu-west-1a/i-0a000000000000001"}, providers.ErrUnsupportedNode},
	}
	for _, c := range cases {
		if _, err := p.DescribeNode(ctx, c.node); !errors.Is(err, c.want) {
			t.Errorf("%s: want %v, got %v", c.node.Name, c.want, err)
		}
	}
	must(t, e.sim.TerminateInstance("i-0a000000000000002"))
	if _, err := p.DescribeNode(ctx, gwA2); !errors.Is(err, providers.ErrNotFound) {
		t.Errorf("terminated instance: want ErrNotFound, got %v", err)
	}
}

func equalInfo(a, b providers.NodeInfo) bool {
	return a.Instance == b.Instance && a.Interface == b.Interface && a.Zone == b.Zone && a.SubnetID == b.SubnetID &&
		a.Subnet == b.Subnet && a.Capacity == b.Capacity && slices.Equal(a.Addresses, b.Addresses)
}

// TestColdCacheResolvesEachNodeOnce: a new leader's first burst of moves to one gateway describes it once.
func TestColdCacheResolvesEachNodeOnce(t *testing.T) {
	e, p := start(t)
	var wg sync.WaitGroup
	for i := range 9 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Move(t.Context(), gwA1, []netip.Addr{ip(fmt.Sprintf("10.0.1.%d", 50+i))}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := e.calls("DescribeInstances"); got != 1 {
		t.Fatalf("nine concurrent moves to a cold gateway made %d DescribeInstances calls, want 1", got)
	}
}

// TestACachedInstanceIsNotAnsweredForAnotherRegion: once gw-a1's instance is cached, a providerID naming
// the same instance ID in another region (another instance, for another provider) is still refused, by
// every method, without a call to EC2.
func TestACachedInstanceIsNotAnsweredForAnotherRegion(t *testing.T) {
	e, p := start(t)
	ctx := t.Context()
	must(t, p.Assign(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.50")}))
	elsewhere := providers.Node{Name: "eu-node", ProviderID: "aws:///eu-west-1a/i-0a000000000000001"}
	before := e.sim.Actions()
	errs := map[string]error{
		"Assign":  p.Assign(ctx, elsewhere, providers.Assignment{IP: ip("10.0.1.51")}),
		"Move":    p.Move(ctx, elsewhere, []netip.Addr{ip("10.0.1.52")}),
		"Release": p.Release(ctx, elsewhere, providers.Assignment{IP: ip("10.0.1.50")}),
	}
	_, errs["DescribeNode"] = p.DescribeNode(ctx, elsewhere)
	for method, err := range errs {
		if !errors.Is(err, providers.ErrUnsupportedNode) {
			t.Errorf("%s on a node of another region: want ErrUnsupportedNode, got %v", method, err)
		}
	}
	wantCalls(t, "the other region's node", e.sim.Actions(), before, map[string]int{})
	e.wantOn(t, "10.0.1.50", eniA1)
}
