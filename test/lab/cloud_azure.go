package lab

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/egressgw/egressgw/test/azuresim"
	"github.com/egressgw/egressgw/test/netlab"
)

// The lab's Azure subscription and the manager's Workload Identity.
const (
	azureSubscription = "00000000-0000-4000-8000-0000000000aa"
	azureGroup        = "MC_egressgw-lab_cluster_westeurope"
	azureTenant       = "72f988bf-0000-4000-8000-000000000001"
	azureClientID     = "5a1ab000-0000-4000-8000-00000000e9e9"
)

// azureSpec is AKS: Azure CNI overlay with kube-proxy, egress IPs as ip configurations of the gateway VMs'
// NICs, the gateways a VirtualMachines pool.
type azureSpec struct{}

func (*azureSpec) zones() [2]string { return [2]string{"westeurope-1", "westeurope-2"} }
func (*azureSpec) region() string   { return "westeurope" }
func (*azureSpec) profile() netlab.Profile {
	return netlab.Profile{CNI: netlab.AzureCNIOverlay(), Proxy: netlab.KubeProxyIPTables}
}
func (*azureSpec) podBlocksByLab() bool { return false }
func (*azureSpec) conflist() string     { return "15-azure.conflist" }
func (*azureSpec) bridge() string       { return "azbr0" }

// vm is node i's VM: node1 and node2 are the gw pool, the others the user pool.
func (*azureSpec) vm(i int) string {
	if gatewayNodes[fmt.Sprintf("node%d", i)] {
		return fmt.Sprintf("aks-gw-12345678-vm%d", i-1)
	}
	return fmt.Sprintf("aks-user-12345678-vm%d", i-3)
}

func (s *azureSpec) instance(i int) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines/%s", azureSubscription, azureGroup, s.vm(i))
}
func (s *azureSpec) providerID(i int) string { return "azure://" + s.instance(i) }

func (s *azureSpec) model(topo *netlab.Topology) azuresim.Model {
	m := azuresim.Model{Subscription: azureSubscription, Location: s.region(), ResourceGroup: azureGroup,
		VirtualNetworks: []azuresim.VNetSpec{{Name: "aks-vnet", Subnets: []azuresim.SubnetSpec{{Name: "aks-nodes", AddressPrefix: netlab.VPCSubnet.String()}}}}}
	for i, n := range topo.Nodes {
		pool := "user"
		if gatewayNodes[n.Name] {
			pool = "gw"
		}
		m.VirtualMachines = append(m.VirtualMachines, azuresim.VMSpec{Name: s.vm(i + 1), Zone: fmt.Sprint(zoneOf(i+1) + 1),
			Tags: map[string]string{"aks-managed-poolName": pool},
			NICs: []azuresim.NICSpec{{Name: s.vm(i+1) + "-nic", Subnet: "aks-vnet/aks-nodes", IPs: []string{n.IP.String()}}}})
	}
	return m
}

// start runs the Resource Manager simulator over HTTPS with its own CA, allowing the manager's identity
// the actions of examples/azure/role-definition.json; its Entra endpoint exchanges the federated token.
func (s *azureSpec) start(l *Lab, c *Cloud) error {
	data, err := os.ReadFile(filepath.Join(l.cfg.RepoRoot, "examples", "azure", "role-definition.json"))
	if err != nil {
		return err
	}
	var role struct{ Actions []string }
	if err := json.Unmarshal(data, &role); err != nil || len(role.Actions) == 0 {
		return fmt.Errorf("examples/azure/role-definition.json: no Actions (%v)", err)
	}
	log, err := l.simLog("azuresim")
	if err != nil {
		return err
	}
	sim, err := azuresim.New(s.model(l.Topo), azuresim.Options{Logger: log, Roles: map[string][]string{azureClientID: role.Actions},
		OnChange: func(ev azuresim.Event) {
			c.record(CloudEvent{IP: ev.IP, Instance: ev.Instance, NextHop: ev.NextHop}, func() error { return c.route(ev.IP, ev.NextHop) })
		}})
	if err != nil {
		return err
	}
	c.where = func(ip netip.Addr) (string, bool) { h, ok := sim.Where(ip); return h.Instance, ok && h.Instance != "" }
	c.holders = func(ip netip.Addr) int { return len(sim.HoldersOf(ip)) }
	l.setOperationLatency(sim, 2*time.Second, 10*time.Second)
	ca, err := azuresim.NewCA()
	if err != nil {
		return err
	}
	cfg, err := ca.ServerConfig()
	if err != nil {
		return err
	}
	if c.URL, err = l.serveLoopback(sim, cfg); err != nil {
		return err
	}
	if err := l.writeCABundle(ca.PEM()); err != nil {
		return err
	}
	// What the Workload Identity webhook projects into the manager's pod.
	return os.WriteFile(l.path("azure-federated-token"), []byte("projected-service-account-token"), 0o600)
}

func (s *azureSpec) chartValues(l *Lab) map[string]any {
	return map[string]any{"cloud": "azure", "azure": map[string]any{"subscription": azureSubscription, "resourceGroups": []any{azureGroup},
		"cloudName": "custom", "armEndpoint": l.Cloud.URL, "armAudience": "https://management.azure.com", "authorityHost": l.Cloud.URL + "/"},
		"caBundle": map[string]any{"configMapName": "egressgw-cloud-ca", "key": "ca.crt"},
		"identity": map[string]any{"azureClientID": azureClientID}}
}

func (*azureSpec) managerEnv(l *Lab) []string {
	return []string{"AZURE_CLIENT_ID=" + azureClientID, "AZURE_TENANT_ID=" + azureTenant,
		"AZURE_FEDERATED_TOKEN_FILE=" + l.path("azure-federated-token"), "AZURE_AUTHORITY_HOST=" + l.Cloud.URL + "/",
		"AZURE_CLIENT_SECRET=", "AZURE_CLIENT_CERTIFICATE_PATH=", "AZURE_USERNAME="}
}
