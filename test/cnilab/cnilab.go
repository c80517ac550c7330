// Package cnilab sets up pods' networks the way a node's runtime does: libcni running the reference bridge
// and host-local plugins (containernetworking/plugins, built from their Go module), with egressgw-cni
// chained after them, inside a netlab namespace that plays the node. Tests of the CNI path use it, and so
// can whole-system tests that need pods created through real CNI plugins. It needs root.
package cnilab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"

	"github.com/egressgw/egressgw/test/netlab"
)

// ReferencePluginsVersion is the containernetworking/plugins release egressgw-cni is chained behind.
const ReferencePluginsVersion = "v1.10.0"

// NetworkName is the name of the chain's network (host-local keeps its reservations under it).
const NetworkName = "egwtest"

// BuildPlugins builds bridge and host-local from their module, with the module's own go.mod as their
// release builds them, and egressgw-cni from this tree, into dir.
func BuildPlugins(ctx context.Context, dir string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, "go", "install",
		"github.com/containernetworking/plugins/plugins/main/bridge@"+ReferencePluginsVersion,
		"github.com/containernetworking/plugins/plugins/ipam/host-local@"+ReferencePluginsVersion)
	install.Env = append(os.Environ(), "GOBIN="+dir)
	if out, err := install.CombinedOutput(); err != nil {
		return fmt.Errorf("go install the reference plugins: %v: %s", err, out)
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, "egressgw-cni"), "github.com/egressgw/egressgw/cmd/cni")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build egressgw-cni: %v: %s", err, out)
	}
	return nil
}

// Config describes a chain.
type Config struct {
	BinDir   string       // where BuildPlugins put the plugins
	StateDir string       // libcni's result cache and host-local's reservations go under it
	Bridge   string       // the bridge's name on the node, at most 15 characters
	Subnet   netip.Prefix // pod addresses; the bridge holds the first one and is the pods' gateway
	IPMasq   bool         // the bridge plugin's own masquerade for traffic leaving Subnet
	// SocketPath is the agent's socket; empty leaves egressgw-cni out of the chain (a node before egressgw).
	SocketPath string
	AddTimeout string // egressgw-cni's addTimeout; empty for its default
}

// Chain runs CNI commands for pods on one node.
type Chain struct {
	Node *netlab.Namespace
	List *libcni.NetworkConfigList
	Exec *RecordingExec
	cfg  Config
	cni  *libcni.CNIConfig
}

// NewChain configures libcni for node.
func NewChain(node *netlab.Namespace, cfg Config) (*Chain, error) {
	plugins := []any{map[string]any{
		"type": "bridge", "bridge": cfg.Bridge, "isGateway": true, "ipMasq": cfg.IPMasq,
		// The default route through the bridge, as the usual bridge configurations give pods.
		"ipam": map[string]any{"type": "host-local", "ranges": [][]map[string]string{{{"subnet": cfg.Subnet.String()}}},
			"routes": []map[string]string{{"dst": "0.0.0.0/0"}}, "dataDir": filepath.Join(cfg.StateDir, "host-local")},
	}}
	if cfg.SocketPath != "" {
		entry := map[string]any{"type": "egressgw-cni", "socketPath": cfg.SocketPath, "logLevel": "warn"}
		if cfg.AddTimeout != "" {
			entry["addTimeout"] = cfg.AddTimeout
		}
		plugins = append(plugins, entry)
	}
	data, err := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": NetworkName, "plugins": plugins})
	if err != nil {
		return nil, err
	}
	list, err := libcni.NetworkConfFromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("the chain's conflist: %w", err)
	}
	rec := &RecordingExec{DefaultExec: &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}}}
	return &Chain{Node: node, List: list, Exec: rec, cfg: cfg,
		cni: libcni.NewCNIConfigWithCacheDir([]string{cfg.BinDir}, filepath.Join(cfg.StateDir, "cache"), rec)}, nil
}

// PodRuntime is a sandbox's runtime configuration with the CNI_ARGS containerd passes
// (internal/cri/server/sandbox_run.go, toCNILabels); namespace and name empty leave them out, as for a
// sandbox that no kubelet started.
func PodRuntime(containerID, netnsName, namespace, name, uid string) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{ContainerID: containerID, NetNS: "/run/netns/" + netnsName, IfName: "eth0"}
	if namespace != "" || name != "" {
		rt.Args = [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", namespace}, {"K8S_POD_NAME", name},
			{"K8S_POD_INFRA_CONTAINER_ID", containerID}, {"K8S_POD_UID", uid}}
	}
	return rt
}

// Add runs ADD of the whole chain from inside the node namespace (the plugins are children of a thread in
// it, as on a node) and returns the result libcni returns.
func (c *Chain) Add(ctx context.Context, rt *libcni.RuntimeConf) (json.RawMessage, error) {
	var out json.RawMessage
	err := c.Node.Do(func() error {
		res, err := c.cni.AddNetworkList(ctx, c.List, rt)
		if err != nil {
			return err
		}
		out, err = json.Marshal(res)
		return err
	})
	return out, err
}

// Del runs DEL of the whole chain, last plugin first, as a runtime does when a pod goes or its ADD failed.
func (c *Chain) Del(ctx context.Context, rt *libcni.RuntimeConf) error {
	return c.Node.Do(func() error { return c.cni.DelNetworkList(ctx, c.List, rt) })
}

// Reservations are the addresses host-local holds (one file per address).
func (c *Chain) Reservations() []string {
	entries, _ := os.ReadDir(filepath.Join(c.cfg.StateDir, "host-local", NetworkName))
	var ips []string
	for _, e := range entries {
		if _, err := netip.ParseAddr(e.Name()); err == nil {
			ips = append(ips, e.Name())
		}
	}
	return ips
}

// FirstIP is the first address of a CNI result, as a runtime reads the pod's IP from it.
func FirstIP(res json.RawMessage) (netip.Addr, error) {
	var r struct {
		IPs []struct {
			Address string `json:"address"`
		} `json:"ips"`
	}
	if err := json.Unmarshal(res, &r); err != nil || len(r.IPs) == 0 {
		return netip.Addr{}, fmt.Errorf("CNI result without an address (%v): %s", err, res)
	}
	p, err := netip.ParsePrefix(r.IPs[0].Address)
	return p.Addr(), err
}
