package lab

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/egressgw/egressgw/test/gcpsim"
	"github.com/egressgw/egressgw/test/netlab"
)

// The lab's GCP project.
const (
	gcpProject = "egressgw-lab"
	gcpToken   = "lab-manager-access-token"
)

// gcpSpec is GKE: its CNI (pod ranges as alias ranges of nic0, IP masquerade) with kube-proxy, egress IPs
// as alias /32s of nic0.
type gcpSpec struct{}

func (gcpSpec) zones() [2]string { return [2]string{"us-central1-a", "us-central1-b"} }
func (gcpSpec) region() string   { return "us-central1" }
func (gcpSpec) profile() netlab.Profile {
	return netlab.Profile{CNI: netlab.GKE(), Proxy: netlab.KubeProxyIPTables}
}
func (gcpSpec) podBlocksByLab() bool  { return false }
func (gcpSpec) conflist() string      { return "10-containerd-net.conflist" }
func (gcpSpec) bridge() string        { return "cbr0" }
func (gcpSpec) instance(i int) string { return fmt.Sprintf("gke-lab-pool-%d", i) }
func (s gcpSpec) zone(i int) string   { return s.zones()[zoneOf(i)] }
func (s gcpSpec) providerID(i int) string {
	return fmt.Sprintf("gce://%s/%s/%s", gcpProject, s.zone(i), s.instance(i))
}

func (s gcpSpec) model(topo *netlab.Topology) gcpsim.Model {
	m := gcpsim.Model{Project: gcpProject, Subnetworks: []gcpsim.SubnetworkSpec{{Name: "nodes", Region: s.region(), Network: "vpc-1",
		IPCIDRRange: netlab.VPCSubnet.String(), SecondaryIPRanges: []gcpsim.SecondaryRange{
			{RangeName: "pods", IPCIDRRange: netlab.PodSupernet.String()}, {RangeName: "services", IPCIDRRange: ServiceCIDR.String()}}}}}
	for i, n := range topo.Nodes {
		m.Instances = append(m.Instances, gcpsim.InstanceSpec{Name: s.instance(i + 1), Zone: s.zone(i + 1), MachineType: "e2-standard-4",
			NetworkInterfaces: []gcpsim.InterfaceSpec{{Subnetwork: "nodes", NetworkIP: n.IP.String(),
				AliasIPRanges: []gcpsim.AliasSpec{{IPCIDRRange: n.PodCIDR.String(), SubnetworkRangeName: "pods"}}}}})
	}
	return m
}

// start runs the Compute Engine simulator, accepting only the manager's token with the permissions of
// examples/gcp/custom-role.yaml.
func (s gcpSpec) start(l *Lab, c *Cloud) error {
	data, err := os.ReadFile(filepath.Join(l.cfg.RepoRoot, "examples", "gcp", "custom-role.yaml"))
	if err != nil {
		return err
	}
	var role struct {
		IncludedPermissions []string `json:"includedPermissions"`
	}
	if err := yaml.Unmarshal(data, &role); err != nil || len(role.IncludedPermissions) == 0 {
		return fmt.Errorf("examples/gcp/custom-role.yaml: no includedPermissions (%v)", err)
	}
	log, err := l.simLog("gcpsim")
	if err != nil {
		return err
	}
	sim, err := gcpsim.New(s.model(l.Topo), gcpsim.Options{Logger: log, Callers: map[string][]string{gcpToken: role.IncludedPermissions},
		OnChange: func(ev gcpsim.Event) {
			c.record(CloudEvent{IP: ev.IP, Instance: ev.Instance, NextHop: ev.NextHop}, func() error { return c.route(ev.IP, ev.NextHop) })
		}})
	if err != nil {
		return err
	}
	c.where = func(ip netip.Addr) (string, bool) { h, ok := sim.Where(ip); return h.Instance, ok && h.Instance != "" }
	c.holders = func(ip netip.Addr) int { return len(sim.HoldersOf(ip)) }
	l.setOperationLatency(sim, 2*time.Second, 5*time.Second)
	// Zone operations complete when their time has come; with latency they need a clock tick.
	stop := make(chan struct{})
	go func() {
		for tick := time.NewTicker(50 * time.Millisecond); ; {
			select {
			case <-stop:
				tick.Stop()
				return
			case <-tick.C:
				sim.Settle()
			}
		}
	}()
	l.onClose(func() error { close(stop); return nil })
	if c.URL, err = l.serveLoopback(sim, nil); err != nil {
		return err
	}
	return os.WriteFile(l.path("gcp-token"), []byte(gcpToken+"\n"), 0o600)
}

func (gcpSpec) chartValues(l *Lab) map[string]any {
	return map[string]any{"cloud": "gcp", "gcp": map[string]any{"project": gcpProject, "network": "vpc-1", "endpoint": l.Cloud.URL,
		"accessTokenFile": l.path("gcp-token")}}
}

func (gcpSpec) managerEnv(*Lab) []string { return nil }
