package manager_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/failover"
	"github.com/egressgw/egressgw/pkg/manager"
	"github.com/egressgw/egressgw/providers/azure"
	"github.com/egressgw/egressgw/test/azuresim"
)

// The model's VMs in subnet aks-nodes (10.224.0.0/16), by name, with the VM name of their providerID.
const azureVMs = "/subscriptions/00000000-0000-4000-8000-0000000000aa/resourceGroups/MC_egressgw_cluster_westeurope/providers/Microsoft.Compute/virtualMachines/"

var azureNodes = []struct{ name, vm string }{
	{"aks-gw-12345678-vm0", "aks-gw-12345678-vm0"}, {"aks-gw-12345678-vm1", "aks-gw-12345678-vm1"}, {"aks-flex-a1b2c3d4", "aks-flex_a1b2c3d4"},
}

// azureCloud is the ARM simulator serving test/azuresim's AKS model over HTTPS, with the history of
// where every private IP lived, and the real Azure provider pointed at it.
type azureCloud struct {
	sim      *azuresim.Server
	history  *ipHistory
	provider *azure.Provider
	opts     *arm.ClientOptions
}

func newAzureCloud(t *testing.T) *azureCloud {
	t.Helper()
	m, err := azuresim.LoadModel("../../test/azuresim/testdata/aks.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a := &azureCloud{history: newIPHistory()}
	a.sim, err = azuresim.New(m, azuresim.Options{Logger: quiet, OnChange: func(e azuresim.Event) {
		a.history.record(e.IP, strings.ToLower(e.PrevInterface), strings.ToLower(e.Interface))
	}})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := azuresim.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Serve(a.sim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	a.opts = &arm.ClientOptions{ClientOptions: policy.ClientOptions{
		Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: "https://login.invalid/",
			Services: map[cloud.ServiceName]cloud.ServiceConfiguration{cloud.ResourceManager: {Endpoint: srv.URL, Audience: "https://management.azure.com"}}},
		Transport: &http.Client{Transport: ca.Transport()},
	}}
	a.provider = a.freshProvider(t)
	return a
}

// freshProvider is another real Azure provider for the simulator, with empty caches, as a restarted
// manager has.
func (a *azureCloud) freshProvider(t *testing.T) *azure.Provider {
	t.Helper()
	p, err := azure.New("00000000-0000-4000-8000-0000000000aa", azuresim.Credential{Principal: "egressgw-manager"}, a.opts, azure.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// addAzureNodes creates the Node objects of the model's VMs in subnet aks-nodes, all gateway nodes.
func (c *cluster) addAzureNodes() {
	for i, n := range azureNodes {
		c.addNode(n.name, 10+i, "azure://"+azureVMs+n.vm, gatewayLabels)
	}
}

// holder is the node whose NIC holds ip in the simulator, "" when none.
func (a *azureCloud) holder(ip string) string {
	h, ok := a.sim.Where(addr(ip))
	if !ok {
		return ""
	}
	for _, n := range azureNodes {
		if strings.HasSuffix(strings.ToLower(h.Instance), "/"+strings.ToLower(n.vm)) {
			return n.name
		}
	}
	return "VM " + h.Instance
}

// TestFailoverThroughAzure kills the agent of the gateway holding an egress IP, 20 times, with the real
// Azure provider (no Mover: the ip configuration is removed from the old NIC, then added to the new
// one) against the ARM simulator at its default operation latency 0, and checks that the IP lands on
// another node, never on two NICs. It reports detection and "IP confirmed on the new node" (p50, p99).
func TestFailoverThroughAzure(t *testing.T) {
	a := newAzureCloud(t)
	c := newCluster(t, a.provider)
	c.addAzureNodes()
	c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec("10.224.0.50")})
	c.startManager("m1", func(o *manager.RunOptions) { o.Config.Probe = failover.ProberConfig{} })
	c.eventually("the IP placed", func() (bool, string) { return a.holder("10.224.0.50") != "", "" })
	<-c.moves
	detect, total := c.failoverTrials(t, 20, "10.224.0.50", func() string { return a.holder("10.224.0.50") })
	a.history.check(t, addr("10.224.0.50"))
	t.Logf("Azure failover over %d trials, from the kill: detection p50 %v p99 %v; IP confirmed on the new node p50 %v p99 %v",
		len(total), percentile(detect, 50), percentile(detect, 99), percentile(total, 50), percentile(total, 99))
}
