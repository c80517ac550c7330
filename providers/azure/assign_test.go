package azure

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egressgw/egressgw/providers"
)

func TestAssignReleaseRoundTrip(t *testing.T) {
	e, p := start(t)
	ctx := timeout(t, time.Minute)
	must(t, p.Assign(ctx, gw0, providers.Assignment{IP: ip("10.224.0.50"), PublicIP: pip1}))
	h := e.wantOn(t, "10.224.0.50", gw0NIC)
	if h.IPConfig != "egressgw-10-224-0-50" || !strings.EqualFold(h.PublicIP, pip1) {
		t.Fatalf("want ip configuration egressgw-10-224-0-50 with %s, got %+v", pip1, h)
	}
	writes := e.count(nicWrite)
	must(t, p.Assign(ctx, gw0, providers.Assignment{IP: ip("10.224.0.50"), PublicIP: pip1}))
	if e.count(nicWrite) != writes {
		t.Fatal("assigning what is already there wrote the NIC")
	}
	info, err := p.DescribeNode(ctx, gw0)
	must(t, err)
	if info.Capacity != MaxIPConfigsPerNIC || len(info.Addresses) != 2 || info.Addresses[0] != ip("10.224.0.4") || info.Subnet.String() != "10.224.0.0/16" || info.Zone != "1" {
		t.Fatalf("unexpected node info %+v", info)
	}
	locs, err := p.Locate(ctx, []netip.Addr{ip("10.224.0.50"), ip("10.224.0.4"), ip("10.224.9.9")})
	must(t, err)
	got := locs[ip("10.224.0.50")]
	if got.Instance != info.Instance || got.Interface != info.Interface || got.Primary || got.PublicIP != ip("20.50.0.1") || !locs[ip("10.224.0.4")].Primary || len(locs) != 2 {
		t.Fatalf("unexpected locations %+v (node %+v)", locs, info)
	}
	must(t, p.Release(ctx, gw0, providers.Assignment{IP: ip("10.224.0.50")}))
	e.wantOn(t, "10.224.0.50", "")
	writes = e.count(nicWrite)
	must(t, p.Release(ctx, gw0, providers.Assignment{IP: ip("10.224.0.50")}))
	if e.count(nicWrite) != writes {
		t.Fatal("releasing what is not there wrote the NIC")
	}
}

// TestMoveIsReleaseThenAssign: Azure has no one-call move; Assign never takes an IP from another NIC.
func TestMoveIsReleaseThenAssign(t *testing.T) {
	e, p := start(t)
	ctx := timeout(t, time.Minute)
	a := providers.Assignment{IP: ip("10.224.0.50"), PublicIP: pip1}
	must(t, p.Assign(ctx, gw0, a))
	if err := p.Assign(ctx, gw1, a); !errors.Is(err, providers.ErrAssignedElsewhere) {
		t.Fatalf("want ErrAssignedElsewhere, got %v", err)
	}
	e.wantOn(t, "10.224.0.50", gw0NIC)
	must(t, p.Release(ctx, gw1, a)) // not there: nothing to do, and gw0 keeps it
	e.wantOn(t, "10.224.0.50", gw0NIC)
	must(t, p.Release(ctx, gw0, a))
	must(t, p.Assign(ctx, gw1, a))
	if h := e.wantOn(t, "10.224.0.50", gw1NIC); !strings.EqualFold(h.PublicIP, pip1) {
		t.Fatalf("the public IP did not follow: %+v", h)
	}
	if _, ok := interface{}(p).(providers.Mover); ok {
		t.Fatal("the Azure provider must not claim a one-call move")
	}
}

func TestRefusals(t *testing.T) {
	e, p := start(t)
	ctx := timeout(t, time.Minute)
	must(t, p.Assign(ctx, gw0, providers.Assignment{IP: ip("10.224.0.60")}))
	cases := []struct {
		name string
		call func() error
		want []error
	}{
		{"outside the subnet", func() error { return p.Assign(ctx, gw0, providers.Assignment{IP: ip("10.225.0.50")}) }, []error{providers.ErrOutsideSubnet}},
		{"another node's primary", func() error { return p.Assign(ctx, gw0, providers.Assignment{IP: ip("10.224.0.5")}) }, []error{providers.ErrAssignedElsewhere}},
		{"own primary", func() error { return p.Assign(ctx, gw0, providers.Assignment{IP: ip("10.224.0.4")}) }, []error{providers.ErrAssignedElsewhere}},
		{"release own primary", func() error { return p.Release(ctx, gw0, providers.Assignment{IP: ip("10.224.0.4")}) }, []error{providers.ErrPermanent}},
		{"missing public IP", func() error {
			return p.Assign(ctx, gw0, providers.Assignment{IP: ip("10.224.0.51"), PublicIP: pip1 + "-missing"})
		}, []error{providers.ErrNotFound}},
		{"public IP of a node", func() error {
			return p.Assign(ctx, gw0, providers.Assignment{IP: ip("10.224.0.51"), PublicIP: nodePIP})
		}, []error{providers.ErrAssignedElsewhere}},
		{"public IP that is no ID", func() error {
			return p.Assign(ctx, gw0, providers.Assignment{IP: ip("10.224.0.51"), PublicIP: "20.50.0.1"})
		}, []error{providers.ErrPermanent}},
		{"IPv6", func() error { return p.Assign(ctx, gw0, providers.Assignment{IP: ip("fd00::1")}) }, []error{providers.ErrPermanent}},
		{"VM gone", func() error { return p.Assign(ctx, gone, providers.Assignment{IP: ip("10.224.0.51")}) }, []error{providers.ErrNotFound}},
		{"another cloud", func() error {
			return p.Assign(ctx, providers.Node{Name: "x", ProviderID: "aws:///us-east-1a/i-0a000000000000001"}, providers.Assignment{IP: ip("10.224.0.51")})
		}, []error{providers.ErrUnsupportedNode}},
		{"another subscription", func() error {
			return p.Assign(ctx, providers.Node{Name: "x", ProviderID: strings.Replace(gw0.ProviderID, testSub, "00000000-0000-4000-8000-0000000000bb", 1)}, providers.Assignment{IP: ip("10.224.0.51")})
		}, []error{providers.ErrUnsupportedNode}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			for _, want := range c.want {
				if !errors.Is(err, want) {
					t.Fatalf("want %v, got %v", want, err)
				}
			}
		})
	}
	e.wantOn(t, "10.224.0.51", "")
	e.wantOn(t, "10.224.0.60", gw0NIC) // a refused edit in a batch does not disturb what is there
}

// TestUniformScaleSetInstanceRefused: a classic AKS node's NIC belongs to the scale set model; the
// refusal says why and what to do, and nothing is written.
func TestUniformScaleSetInstanceRefused(t *testing.T) {
	e, p := start(t)
	ctx := timeout(t, time.Minute)
	_, err := p.DescribeNode(ctx, uniform)
	for _, want := range []error{providers.ErrUnsupportedNode, providers.ErrPermanent} {
		if !errors.Is(err, want) {
			t.Fatalf("want %v, got %v", want, err)
		}
	}
	if !strings.Contains(err.Error(), "Uniform scale set aks-nodepool1-12345678-vmss") || !strings.Contains(err.Error(), "VirtualMachines") {
		t.Fatalf("the refusal must name the scale set and the way out: %v", err)
	}
	if err := p.Assign(ctx, uniform, providers.Assignment{IP: ip("10.224.0.50")}); !errors.Is(err, providers.ErrUnsupportedNode) {
		t.Fatalf("want ErrUnsupportedNode, got %v", err)
	}
	if e.count(nicWrite) != 0 {
		t.Fatalf("a NIC was written: %v", e.sim.Actions())
	}
}

func TestFlexibleScaleSetInstanceWorks(t *testing.T) {
	e, p := start(t)
	ctx := timeout(t, time.Minute)
	for i, node := range []providers.Node{flexVM, flexSS} {
		addr := fmt.Sprintf("10.224.0.%d", 70+i)
		must(t, p.Assign(ctx, node, providers.Assignment{IP: ip(addr)}))
		e.wantOn(t, addr, "aks-flex-a1b2c3d4-nic")
	}
}

// TestSharedNICRefused: a NIC with Azure CNI node-subnet pod IPs (secondary ip configurations egressgw did
// not create) is refused unless the operator says they are not a CNI's.
func TestSharedNICRefused(t *testing.T) {
	e, p := start(t)
	ctx := timeout(t, time.Minute)
	if _, err := p.DescribeNode(ctx, cniNode); !errors.Is(err, providers.ErrUnsupportedNode) || !strings.Contains(err.Error(), "Azure CNI") {
		t.Fatalf("want ErrUnsupportedNode naming Azure CNI, got %v", err)
	}
	if err := p.Assign(ctx, cniNode, providers.Assignment{IP: ip("10.224.0.50")}); !errors.Is(err, providers.ErrUnsupportedNode) {
		t.Fatalf("want ErrUnsupportedNode, got %v", err)
	}
	e.wantOn(t, "10.224.0.50", "")
	opts := testOptions
	opts.AllowSharedNIC = true
	must(t, e.provider(t, opts).Assign(ctx, cniNode, providers.Assignment{IP: ip("10.224.0.50")}))
	e.wantOn(t, "10.224.0.50", "aks-cni-12345678-vm0-nic")
}

// TestCapacityAndCoalescedWrites: 255 egress IPs assigned at once fill a NIC to Azure's 256 ip
// configurations in a handful of writes; the next one is refused as capacity.
func TestCapacityAndCoalescedWrites(t *testing.T) {
	e, p := start(t)
	ctx := timeout(t, time.Minute)
	var wg sync.WaitGroup
	errs := make([]error, MaxIPConfigsPerNIC-1)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.Assign(ctx, gw0, providers.Assignment{IP: netip.AddrFrom4([4]byte{10, 224, 1, byte(i + 1)})})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("assign %d: %v", i, err)
		}
	}
	if n := len(e.sim.IPConfigs(gw0NIC)); n != MaxIPConfigsPerNIC {
		t.Fatalf("want %d ip configurations, got %d", MaxIPConfigsPerNIC, n)
	}
	t.Logf("255 concurrent assignments took %d NIC writes", e.count(nicWrite))
	if w := e.count(nicWrite); w > 20 {
		t.Fatalf("255 concurrent assignments to one NIC took %d writes; they must be coalesced", w)
	}
	info, err := p.DescribeNode(ctx, gw0)
	must(t, err)
	if info.Free() != 0 {
		t.Fatalf("want no room left, got %+v", info.Free())
	}
	if err := p.Assign(ctx, gw0, providers.Assignment{IP: ip("10.224.2.1")}); !errors.Is(err, providers.ErrCapacityExhausted) {
		t.Fatalf("want ErrCapacityExhausted, got %v", err)
	}
}

func TestProviderIDComparedWithoutCase(t *testing.T) {
	e, p := start(t)
	lower := providers.Node{Name: gw0.Name, ProviderID: strings.ToLower(gw0.ProviderID)}
	must(t, p.Assign(context.Background(), lower, providers.Assignment{IP: ip("10.224.0.50")}))
	e.wantOn(t, "10.224.0.50", gw0NIC)
	info, err := p.DescribeNode(context.Background(), gw0)
	must(t, err)
	locs, err := p.Locate(context.Background(), []netip.Addr{ip("10.224.0.50")})
	must(t, err)
	if locs[ip("10.224.0.50")].Instance != info.Instance {
		t.Fatalf("Locate's instance %q differs from DescribeNode's %q", locs[ip("10.224.0.50")].Instance, info.Instance)
	}
}
