package gcp

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/test/gcpsim"
)

// TestLocateTellsEgressAliasesFromOthers: only a /32 of the primary range on nic0 is what egressgw adds.
// An address in GKE's pod range (a range from a secondary range) or in a wider range of the primary
// range is located with Location.InUse saying so; an egress /32 is not.
func TestLocateTellsEgressAliasesFromOthers(t *testing.T) {
	e, p := start(t)
	must(t, e.sim.SetAliases(zoneA1, "worker-a4", "nic0", append(e.sim.Aliases(zoneA1, "worker-a4", "nic0"),
		gcpsim.AliasSpec{IPCIDRRange: "10.0.1.136/30"})))
	must(t, p.Assign(t.Context(), gwA1, providers.Assignment{IP: ip("10.0.1.50")}))
	locs, err := p.Locate(t.Context(), []netip.Addr{ip("10.4.1.7"), ip("10.0.1.137"), ip("10.0.1.50")})
	must(t, err)
	for addr, want := range map[string]string{"10.4.1.7": `secondary range "pods"`, "10.0.1.137": "10.0.1.136/30", "10.0.1.50": ""} {
		got := locs[ip(addr)]
		if got.Instance == "" || want == "" && got.InUse != "" || want != "" && !strings.Contains(got.InUse, want) {
			t.Errorf("Locate(%s) = %+v; want it on its instance with InUse naming %q", addr, got, want)
		}
	}
	err = p.Assign(t.Context(), worker, providers.Assignment{IP: ip("10.0.1.138")})
	if !errors.Is(err, providers.ErrIPInUse) {
		t.Errorf("Assign of an address inside the node's own other range: want ErrIPInUse, got %v", err)
	}
}

// TestIPInTwoNetworksIsReportedAlone: two VPC networks of the project reuse 10.0.1.0/24 and each has
// 10.0.1.60 as a /32 alias. Without --gcp-network, Locate reports that IP alone as in use, naming both
// places, and still answers for the others; with the network set, it is on gw-a1.
func TestIPInTwoNetworksIsReportedAlone(t *testing.T) {
	e := newEnv(t, gcpsim.Options{}, func(m *gcpsim.Model) {
		m.Subnetworks = append(m.Subnetworks, gcpsim.SubnetworkSpec{Name: "reused", Region: "us-central1", Network: "vpc-2", IPCIDRRange: "10.0.1.0/24"})
		m.Instances = append(m.Instances, gcpsim.InstanceSpec{Name: "elsewhere", Zone: zoneA1, NetworkInterfaces: []gcpsim.InterfaceSpec{
			{Subnetwork: "reused", NetworkIP: "10.0.1.11", AliasIPRanges: []gcpsim.AliasSpec{{IPCIDRRange: "10.0.1.60/32"}}}}})
	})
	must(t, e.sim.SetAliases(zoneA1, "gw-a1", "nic0", append(e.sim.Aliases(zoneA1, "gw-a1", "nic0"), gcpsim.AliasSpec{IPCIDRRange: "10.0.1.60/32"})))
	p := e.provider(t, Options{})
	must(t, p.Assign(t.Context(), gwA2, providers.Assignment{IP: ip("10.0.1.50")}))
	locs, err := p.Locate(t.Context(), []netip.Addr{ip("10.0.1.60"), ip("10.0.1.50")})
	must(t, err)
	amb := locs[ip("10.0.1.60")]
	if amb.Instance != "" || !strings.Contains(amb.InUse, "gw-a1") || !strings.Contains(amb.InUse, "elsewhere") || !strings.Contains(amb.InUse, "--gcp-network") {
		t.Errorf("the IP in two networks: %+v; want InUse naming both instances and the flag, no instance", amb)
	}
	if got := locs[ip("10.0.1.50")]; got.Instance != project+"/"+zoneA2+"/gw-a2" || got.InUse != "" {
		t.Errorf("the other IP: %+v; want it on gw-a2", got)
	}
	locs, err = e.provider(t, Options{Network: "vpc-1"}).Locate(t.Context(), []netip.Addr{ip("10.0.1.60")})
	must(t, err)
	if got := locs[ip("10.0.1.60")]; got.Instance != project+"/"+zoneA1+"/gw-a1" || got.InUse != "" {
		t.Errorf("with the network set: %+v; want it on gw-a1", got)
	}
}
