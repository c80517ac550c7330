package azure

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/test/azuresim"
)

// TestLocateTellsEgressConfigsFromOthers: only an ip configuration egressgw made holds an egress IP. A
// NIC's primary address and an Azure CNI pod address (ipconfig2) are located with Location.InUse saying
// why; egressgw's own is not; Assign of the pod address to the node that has it refuses it as in use.
func TestLocateTellsEgressConfigsFromOthers(t *testing.T) {
	_, p := start(t)
	must(t, p.Assign(t.Context(), gw0, providers.Assignment{IP: ip("10.224.0.50")}))
	locs, err := p.Locate(t.Context(), []netip.Addr{ip("10.224.0.20"), ip("10.224.0.21"), ip("10.224.0.50")})
	must(t, err)
	for addr, want := range map[string]string{"10.224.0.20": "primary address", "10.224.0.21": "ipconfig2", "10.224.0.50": ""} {
		got := locs[ip(addr)]
		if got.Instance == "" || want == "" && got.InUse != "" || want != "" && !strings.Contains(got.InUse, want) {
			t.Errorf("Locate(%s) = %+v; want it on its VM with InUse naming %q", addr, got, want)
		}
	}
}

// TestAssignRefusesAnotherToolsConfigOnTheNode: with --azure-allow-shared-nic, a gateway NIC may carry
// another tool's ip configuration; Assign of its address refuses it as in use, as Locate reports it, and
// leaves it.
func TestAssignRefusesAnotherToolsConfigOnTheNode(t *testing.T) {
	e := newEnv(t, nil)
	must(t, e.sim.AddIPConfigs(gw0NIC, "other-", []netip.Addr{ip("10.224.0.70")}))
	shared := testOptions
	shared.AllowSharedNIC = true
	err := e.provider(t, shared).Assign(t.Context(), gw0, providers.Assignment{IP: ip("10.224.0.70")})
	if !errors.Is(err, providers.ErrIPInUse) || !strings.Contains(err.Error(), "other-1") {
		t.Errorf("Assign of another tool's ip configuration: want ErrIPInUse naming it, got %v", err)
	}
	if h, ok := e.sim.Where(ip("10.224.0.70")); !ok || !strings.HasSuffix(strings.ToLower(h.Instance), "aks-gw-12345678-vm0") {
		t.Errorf("the address moved: %+v", h)
	}
}

// TestIPOnTwoNICsIsReportedAlone: a virtual network of another resource group reuses the node subnet's
// range, and a NIC there has 10.224.0.60, as gw0 has. Searching the whole subscription, Locate reports
// that IP alone as in use, naming both NICs, and still answers for the others; limited to the cluster's
// resource group, it is on gw0.
func TestIPOnTwoNICsIsReportedAlone(t *testing.T) {
	e := newEnv(t, nil, func(m *azuresim.Model) {
		m.VirtualNetworks = append(m.VirtualNetworks, azuresim.VNetSpec{Name: "reused", ResourceGroup: "other-rg",
			Subnets: []azuresim.SubnetSpec{{Name: "s", AddressPrefix: "10.224.0.0/16"}}})
		m.VirtualMachines = append(m.VirtualMachines, azuresim.VMSpec{Name: "elsewhere", ResourceGroup: "other-rg",
			NICs: []azuresim.NICSpec{{Name: "elsewhere-nic", ResourceGroup: "other-rg", Subnet: "/subscriptions/" + testSub + "/resourceGroups/other-rg/providers/Microsoft.Network/virtualNetworks/reused/subnets/s", IPs: []string{"10.224.0.4", "10.224.0.60"}}}})
	})
	p := e.provider(t, testOptions)
	must(t, p.Assign(t.Context(), gw0, providers.Assignment{IP: ip("10.224.0.60")}))
	must(t, p.Assign(t.Context(), gw1, providers.Assignment{IP: ip("10.224.0.50")}))
	locs, err := p.Locate(t.Context(), []netip.Addr{ip("10.224.0.60"), ip("10.224.0.50")})
	must(t, err)
	amb := locs[ip("10.224.0.60")]
	if amb.Interface != "" || !strings.Contains(amb.InUse, "elsewhere-nic") || !strings.Contains(amb.InUse, gw0NIC) || !strings.Contains(amb.InUse, "--azure-resource-group") {
		t.Errorf("the IP on two NICs: %+v; want InUse naming both NICs and the flag, no NIC", amb)
	}
	if got := locs[ip("10.224.0.50")]; !strings.HasSuffix(got.Interface, gw1NIC) || got.InUse != "" {
		t.Errorf("the other IP: %+v; want it on %s", got, gw1NIC)
	}
	limited := testOptions
	limited.ResourceGroups = []string{testRG}
	locs, err = e.provider(t, limited).Locate(t.Context(), []netip.Addr{ip("10.224.0.60")})
	must(t, err)
	if got := locs[ip("10.224.0.60")]; !strings.HasSuffix(got.Interface, gw0NIC) || got.InUse != "" {
		t.Errorf("limited to %s: %+v; want it on %s", testRG, got, gw0NIC)
	}
}
