package azure

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/providers/internal/grantcheck"
	"github.com/egressgw/egressgw/test/azuresim"
)

const (
	modelFile = "../../test/azuresim/testdata/aks.yaml"
	roleFile  = "../../examples/azure/role-definition.json"
	principal = "egressgw-manager"
	testSub   = "00000000-0000-4000-8000-0000000000aa"
	testRG    = "MC_egressgw_cluster_westeurope"
	rgID      = "/subscriptions/" + testSub + "/resourceGroups/" + testRG
	vmPrefix  = "azure://" + rgID + "/providers/Microsoft.Compute/"
	pip1      = rgID + "/providers/Microsoft.Network/publicIPAddresses/egress-pip-1"
	pip2      = rgID + "/providers/Microsoft.Network/publicIPAddresses/egress-pip-2"
	nodePIP   = rgID + "/providers/Microsoft.Network/publicIPAddresses/node-pip"
	gw0NIC    = "aks-gw-12345678-vm0-nic"
	gw1NIC    = "aks-gw-12345678-vm1-nic"
)

// Nodes of the model file.
var (
	gw0     = providers.Node{Name: "aks-gw-12345678-vm0", ProviderID: vmPrefix + "virtualMachines/aks-gw-12345678-vm0"}
	gw1     = providers.Node{Name: "aks-gw-12345678-vm1", ProviderID: vmPrefix + "virtualMachines/aks-gw-12345678-vm1"}
	other   = providers.Node{Name: "gw-other", ProviderID: vmPrefix + "virtualMachines/gw-other"}
	cniNode = providers.Node{Name: "aks-cni-12345678-vm0", ProviderID: vmPrefix + "virtualMachines/aks-cni-12345678-vm0"}
	uniform = providers.Node{Name: "aks-nodepool1-12345678-vmss000000", ProviderID: vmPrefix + "virtualMachineScaleSets/aks-nodepool1-12345678-vmss/virtualMachines/0"}
	flexVM  = providers.Node{Name: "aks-flex-a1b2c3d4", ProviderID: vmPrefix + "virtualMachines/aks-flex_a1b2c3d4"}
	flexSS  = providers.Node{Name: "aks-flex-a1b2c3d4", ProviderID: vmPrefix + "virtualMachineScaleSets/aks-flex/virtualMachines/a1b2c3d4"}
	gone    = providers.Node{Name: "gone", ProviderID: vmPrefix + "virtualMachines/gone"}
)

// testOptions keep retries and polls quick; the logic is the same at any scale.
var testOptions = Options{PollInterval: 20 * time.Millisecond, Backoff: Backoff{Base: time.Millisecond, Max: 10 * time.Millisecond},
	Logger: slog.New(slog.DiscardHandler)}

// seenActions collects the RBAC actions every simulator of this package's tests checked, for the role
// definition check in TestMain.
var seenActions grantcheck.Seen

type env struct {
	sim *azuresim.Server
	url string
	ca  *azuresim.CA
}

// newEnv serves the model file, changed by tweaks, over HTTPS. Unless roles are given, the provider's principal may do
// exactly what examples/azure/role-definition.json grants, so every test also proves the role suffices.
func newEnv(t testing.TB, roles map[string][]string, tweaks ...func(*azuresim.Model)) *env {
	t.Helper()
	m, err := azuresim.LoadModel(modelFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tweak := range tweaks {
		tweak(&m)
	}
	if roles == nil {
		roles = map[string][]string{principal: roleActions(t)}
	}
	sim, err := azuresim.New(m, azuresim.Options{Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := azuresim.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Serve(sim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Close()
		seenActions.Record(sim.Actions())
	})
	return &env{sim: sim, url: srv.URL, ca: ca}
}

// clientOptions are the SDK's options for the simulator: a custom cloud whose ARM endpoint it is, and a
// transport that trusts its CA.
func (e *env) clientOptions() *arm.ClientOptions {
	return &arm.ClientOptions{ClientOptions: policy.ClientOptions{
		Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: "https://login.invalid/",
			Services: map[cloud.ServiceName]cloud.ServiceConfiguration{cloud.ResourceManager: {Endpoint: e.url, Audience: "https://management.azure.com"}}},
		Transport: &http.Client{Transport: e.ca.Transport()},
	}}
}

// provider returns a fresh provider (empty caches, as after a restart) talking to the simulator.
func (e *env) provider(t testing.TB, opts Options) *Provider {
	t.Helper()
	p, err := New(testSub, azuresim.Credential{Principal: principal}, e.clientOptions(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// start is the usual beginning of a test.
func start(t testing.TB) (*env, *Provider) {
	t.Helper()
	e := newEnv(t, nil)
	return e, e.provider(t, testOptions)
}

func roleActions(t testing.TB) []string {
	t.Helper()
	r, err := loadRole()
	if err != nil {
		t.Fatal(err)
	}
	return r.Actions
}

type roleDefinition struct {
	Name             string
	IsCustom         bool
	Actions          []string
	NotActions       []string
	DataActions      []string
	AssignableScopes []string
}

func loadRole() (roleDefinition, error) {
	var r roleDefinition
	data, err := os.ReadFile(roleFile)
	if err == nil {
		err = json.Unmarshal(data, &r)
	}
	return r, err
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// wantOn fails unless the simulator has addr on the NIC named nic ("" for nowhere), and returns where.
func (e *env) wantOn(t testing.TB, addr, nic string) azuresim.Holder {
	t.Helper()
	hs := e.sim.HoldersOf(ip(addr))
	switch {
	case nic == "" && len(hs) == 0:
		return azuresim.Holder{}
	case len(hs) == 1 && strings.HasSuffix(hs[0].Interface, "/"+nic):
		return hs[0]
	}
	t.Fatalf("%s: want on %q, simulator has it on %+v", addr, nic, hs)
	return azuresim.Holder{}
}

func (e *env) count(action string) int { return e.sim.Actions()[action] }

const (
	nicWrite = "Microsoft.Network/networkInterfaces/write"
	nicRead  = "Microsoft.Network/networkInterfaces/read"
	opRead   = "Microsoft.Network/locations/operations/read"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func timeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
