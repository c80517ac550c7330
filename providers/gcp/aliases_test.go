package gcp

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	compute "cloud.google.com/go/compute/apiv1"
	"cloud.google.com/go/compute/apiv1/computepb"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/test/gcpsim"
)

// TestReleaseOfTheLastAliasRange: gw-b3's nic0 has no other alias range, so releasing its only egress IP
// must send an empty aliasIpRanges. Without the provider's transport the PATCH carries no aliasIpRanges,
// the simulator (like Compute Engine) changes nothing, and the IP stays.
func TestReleaseOfTheLastAliasRange(t *testing.T) {
	e, p := start(t)
	must(t, p.Assign(t.Context(), gwB3, providers.Assignment{IP: ip("10.0.2.50")}))
	e.wantOn(t, "10.0.2.50", "gw-b3")
	must(t, p.Release(t.Context(), gwB3, providers.Assignment{IP: ip("10.0.2.50")}))
	e.wantOn(t, "10.0.2.50", "")
	if got := e.aliases(zoneB3, "gw-b3"); got != "" {
		t.Fatalf("gw-b3 keeps alias ranges %q", got)
	}
}

// TestSDKAloneCannotRemoveTheLastAliasRange documents why the transport exists: the generated client,
// given an empty list, sends none, and the NIC keeps its last alias range although the operation is DONE
// without an error.
func TestSDKAloneCannotRemoveTheLastAliasRange(t *testing.T) {
	e := newEnv(t, gcpsim.Options{})
	must(t, e.sim.SetAliases(zoneB3, "gw-b3", "nic0", []gcpsim.AliasSpec{{IPCIDRRange: "10.0.2.50"}}))
	ctx := t.Context()
	c, err := compute.NewInstancesRESTClient(ctx, option.WithEndpoint(e.url),
		option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "t"})))
	must(t, err)
	defer c.Close()
	inst, err := c.Get(ctx, &computepb.GetInstanceRequest{Project: project, Zone: zoneB3, Instance: "gw-b3"})
	must(t, err)
	op, err := c.UpdateNetworkInterface(ctx, &computepb.UpdateNetworkInterfaceInstanceRequest{Project: project, Zone: zoneB3,
		Instance: "gw-b3", NetworkInterface: "nic0", NetworkInterfaceResource: &computepb.NetworkInterface{
			Fingerprint: inst.NetworkInterfaces[0].Fingerprint, AliasIpRanges: []*computepb.AliasIpRange{}}})
	must(t, err)
	if op.Proto().GetStatus() != computepb.Operation_DONE || op.Proto().GetError() != nil {
		t.Fatalf("operation: %v", op.Proto())
	}
	e.wantOn(t, "10.0.2.50", "gw-b3")
}

// TestPodRangeStaysIntact: GKE's pod range on nic0 (secondary range "pods") survives adding and removing
// egress IPs, with its range name.
func TestPodRangeStaysIntact(t *testing.T) {
	e, p := start(t)
	ctx := t.Context()
	must(t, p.Assign(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.50")}))
	must(t, p.Assign(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.51")}))
	if got := e.aliases(zoneA1, "gw-a1"); got != "10.4.1.0/24@pods,10.0.1.50/32,10.0.1.51/32" {
		t.Fatalf("after two assignments: %s", got)
	}
	must(t, p.Release(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.50")}))
	must(t, p.Release(ctx, gwA1, providers.Assignment{IP: ip("10.0.1.51")}))
	if got := e.aliases(zoneA1, "gw-a1"); got != "10.4.1.0/24@pods" {
		t.Fatalf("after releasing both: %s", got)
	}
	err := p.Release(ctx, gwA1, providers.Assignment{IP: ip("10.4.1.7")})
	if err != nil || e.aliases(zoneA1, "gw-a1") != "10.4.1.0/24@pods" {
		t.Fatalf("releasing an address of the pod range: %v, aliases %s", err, e.aliases(zoneA1, "gw-a1"))
	}
	if err := p.Assign(ctx, gwA1, providers.Assignment{IP: ip("10.4.1.7")}); !errors.Is(err, providers.ErrOutsideSubnet) || !strings.Contains(err.Error(), `"pods"`) {
		t.Fatalf("assigning an address of the pod range: %v", err)
	}
}

// TestAnotherToolsAliasIsInUse: the worker's single-address alias is another tool's; Compute Engine
// refuses it for a gateway inside the operation, with its code.
func TestAnotherToolsAliasIsInUse(t *testing.T) {
	e, p := start(t)
	err := p.Assign(t.Context(), gwA1, providers.Assignment{IP: ip("10.0.1.140")})
	if !errors.Is(err, providers.ErrAssignedElsewhere) || !strings.Contains(err.Error(), "IP_IN_USE_BY_ANOTHER_RESOURCE") {
		t.Fatalf("want ErrAssignedElsewhere with the operation's code, got %v", err)
	}
	e.wantOn(t, "10.0.1.140", "worker-a4")
	info, err := p.DescribeNode(t.Context(), worker)
	must(t, err)
	if info.Capacity != AliasRangesPerInterface || len(info.Addresses) != 2 || info.Free() != AliasRangesPerInterface-2 {
		t.Fatalf("worker: pod range takes a slot, the /32 counts as an address: %+v", info)
	}
}

func TestPublicIPIsRefusedWithTheWayOut(t *testing.T) {
	e, p := start(t)
	err := p.Assign(context.Background(), gwA1, providers.Assignment{IP: ip("10.0.1.50"), PublicIP: "egress-public-1"})
	if !errors.Is(err, providers.ErrPermanent) || !strings.Contains(err.Error(), "Cloud NAT") || !strings.Contains(err.Error(), "publicIP") {
		t.Fatalf("want ErrPermanent naming publicIP and Cloud NAT, got %v", err)
	}
	e.wantOn(t, "10.0.1.50", "")
}

func TestBadInputIsRefused(t *testing.T) {
	_, p := start(t)
	if _, err := p.Locate(t.Context(), []netip.Addr{ip("fd00::1")}); !errors.Is(err, providers.ErrPermanent) {
		t.Errorf("Locate of an IPv6 address: %v", err)
	}
	if err := p.Assign(t.Context(), gwA1, providers.Assignment{IP: ip("fd00::1")}); !errors.Is(err, providers.ErrPermanent) {
		t.Errorf("Assign of an IPv6 address: %v", err)
	}
	if _, err := New(t.Context(), Options{}); err == nil || !strings.Contains(err.Error(), "project") {
		t.Errorf("New without a project: %v", err)
	}
}
